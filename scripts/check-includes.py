#!/usr/bin/env python3
"""Checks the include rules of docs/internals/architecture.md ("Front doors").

The allowed module graph comes from src/<module>/CMakeLists.txt: the library flow_<module>
may use the modules it links (PUBLIC and PRIVATE) and, through them, everything those
export (their PUBLIC links, closed transitively). Then every `#include "<module>/..."` in
src/, fuzz/ and tests/unit/ is checked:

- a file in src/<module>/ may include headers of its own module and of the modules it may
  use; fuzz/<target>.cc and tests/unit/*.cc may include what their executables link
  (fuzz/CMakeLists.txt's `fuzz_libs_<target>`, tests/CMakeLists.txt's `unit_tests`);
- a header in a subfolder of a module (`lambda/node/process.h`) is that module's internals:
  only files inside the module may include it.

Usage: scripts/check-includes.py [ROOT] (default: the repository holding this script).
Prints each violation as `file:line: <module> may not include <header> (<why>)` and exits
1, else prints a one-line summary and exits 0. Python 3 standard library only.
"""

import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
COMMAND = re.compile(r"\b(add_library|add_executable|target_link_libraries|set)\s*\(([^)]*)\)", re.S)
KEYWORDS = {"PUBLIC", "PRIVATE", "INTERFACE"}
SOURCES = (".cc", ".h", ".cpp", ".hpp")


def strip_comments(text):
    return "\n".join(line.split("#", 1)[0] for line in text.splitlines())


def commands(path):
    """(name, [args]) of each CMake command of interest in `path`."""
    with open(path, encoding="utf-8") as f:
        text = strip_comments(f.read())
    return [(m.group(1), m.group(2).split()) for m in COMMAND.finditer(text)]


def module_graph(root):
    """{module: (public deps, private deps)} over the flow_<module> libraries of src/."""
    src = os.path.join(root, "src")
    graph = {}
    for module in sorted(os.listdir(src)):
        cmake = os.path.join(src, module, "CMakeLists.txt")
        if not os.path.isfile(cmake):
            continue
        target = "flow_" + module
        public, private, found = set(), set(), False
        for name, args in commands(cmake):
            if name == "add_library" and args and args[0] == target:
                found = True
            elif name == "target_link_libraries" and args and args[0] == target:
                scope = public  # CMake's plain signature; the project always names a scope
                for a in args[1:]:
                    if a in KEYWORDS:
                        scope = public if a in ("PUBLIC", "INTERFACE") else private
                    elif a.startswith("flow_"):
                        scope.add(a[len("flow_"):])
        if found:
            graph[module] = (public, private)
    return graph


def exported(graph, module, seen=None):
    """`module` and everything it exports: its PUBLIC links, transitively."""
    seen = set() if seen is None else seen
    if module in seen:
        return seen
    seen.add(module)
    for dep in graph.get(module, (set(), set()))[0]:
        exported(graph, dep, seen)
    return seen


def allowed_from_links(graph, links):
    """The modules an executable or library linking `links` may include."""
    allowed = set()
    for dep in links:
        exported(graph, dep, allowed)
    return allowed


def allowed_of_module(graph, module):
    public, private = graph[module]
    return {module} | allowed_from_links(graph, public | private)


def executable_links(root):
    """{relative source path: set of modules} for fuzz targets and the unit tests."""
    out = {}
    fuzz = os.path.join(root, "fuzz", "CMakeLists.txt")
    if os.path.isfile(fuzz):
        for name, args in commands(fuzz):
            if name == "set" and args and args[0].startswith("fuzz_libs_"):
                target = args[0][len("fuzz_libs_"):]
                out["fuzz/%s.cc" % target] = {a[len("flow_"):] for a in args[1:] if a.startswith("flow_")}
    tests = os.path.join(root, "tests", "CMakeLists.txt")
    unit = set()
    if os.path.isfile(tests):
        for name, args in commands(tests):
            if name == "target_link_libraries" and args and args[0] == "unit_tests":
                unit |= {a[len("flow_"):] for a in args[1:] if a.startswith("flow_")}
    return out, unit


def sources(root, top):
    base = os.path.join(root, top)
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith(SOURCES):
                yield os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")


def check(root):
    graph = module_graph(root)
    if not graph:
        print("check-includes: no flow_<module> libraries under %s/src" % root, file=sys.stderr)
        return 2
    fuzz_links, unit_links = executable_links(root)
    violations, files, includes = [], 0, 0

    def scan(path, owner, allowed):
        nonlocal files, includes
        files += 1
        with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                header = m.group(1)
                parts = header.split("/")
                target = parts[0]
                if len(parts) < 2 or target not in graph:
                    continue  # a local or generated header, not a module's
                includes += 1
                if target not in allowed:
                    why = ("its CMake library does not link flow_%s, directly or through a PUBLIC link"
                           % target)
                    violations.append("%s:%d: %s may not include %s (%s)" % (path, number, owner, header, why))
                elif len(parts) > 2 and owner != target:
                    why = "%s/ is internal to module %s; use its public headers" % ("/".join(parts[:-1]), target)
                    violations.append("%s:%d: %s may not include %s (%s)" % (path, number, owner, header, why))

    for path in sources(root, "src"):
        module = path.split("/")[1]
        if module in graph:
            scan(path, module, allowed_of_module(graph, module))
    for path in sources(root, "fuzz"):
        if path in fuzz_links:
            scan(path, "fuzz target %s" % path, allowed_from_links(graph, fuzz_links[path]))
    for path in sources(root, "tests/unit"):
        scan(path, "unit_tests", allowed_from_links(graph, unit_links))

    for v in violations:
        print(v)
    if violations:
        print("check-includes: %d violation(s) of the include rules (docs/internals/architecture.md)"
              % len(violations))
        return 1
    print("check-includes: %d module includes in %d files follow the graph of %d modules" %
          (includes, files, len(graph)))
    return 0


if __name__ == "__main__":
    here = os.path.dirname(os.path.abspath(__file__))
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(here)))
