#include "catalog/parse.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "base/strings.h"
#include "base/url.h"
#include "catalog/parse_context.h"
#include "doc/pointer.h"
#include "schema/index.h"

namespace flow::catalog::parsing {

bool CheckPointer(const Ctx& ctx, const Node& v, const std::string& pointer,
                  const std::string& owner, const char* what, std::string* out) {
  if (!v.is_string()) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} must be a JSON pointer string, found {}", what, Obj::Describe(v)));
    return false;
  }
  std::string why;
  if (!doc::Pointer::Parse(v.as_string(), &why)) {
    std::string hint = why.find("start with") != std::string::npos
                           ? fmt::format("JSON pointers start with / (write `/{}`)", v.as_string())
                           : why;
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} `{}` is not a valid JSON pointer", what, v.as_string()), hint);
    return false;
  }
  if (v.as_string().empty()) {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("{} may not be the empty pointer (the whole document)", what));
    return false;
  }
  *out = v.as_string();
  return true;
}

SchemaSpec ParseSchemaRef(const Ctx& ctx, const Node& v, const std::string& pointer,
                          const std::string& owner) {
  SchemaSpec s;
  s.where = ctx.At(v, pointer);
  if (v.is_string()) {
    if (v.as_string().empty()) {
      ctx.Error(v.mark(), pointer, owner, "schema URL is empty");
      return s;
    }
    s.present = true;
    s.url = ResolveUrl(ctx.file().url, v.as_string());
  } else if (v.is_object() || v.is_bool()) {
    s.present = true;
    s.inline_node = &v;
    s.url = schema::InlineSchemaUrl(ctx.file().url, pointer);
  } else {
    ctx.Error(v.mark(), pointer, owner,
              fmt::format("`schema` must be a URL or an inline schema, found {}", Obj::Describe(v)));
  }
  return s;
}

void ParseSelector(const Ctx& ctx, const Node& v, const std::string& pointer,
                   const std::string& owner, PartitionSelectorSpec* out) {
  Obj o(ctx, v, pointer, owner, "a partition selector", {"include", "exclude"});
  out->where = ctx.At(v, pointer);
  out->node = &v;
  if (!o.ok()) return;
  out->present = true;
  for (const char* which : {"include", "exclude"}) {
    const Node* m = o.Get(which);
    if (!m) continue;
    std::string mp = o.PointerOf(which);
    if (!m->is_object()) {
      ctx.Error(m->mark(), mp, owner,
                fmt::format("`{}` must map partition fields to lists of values", which),
                "e.g. `include: {region: [EU, US]}`");
      continue;
    }
    for (const auto& f : m->members()) {
      PartitionSelectorSpec::Term t;
      t.field = f.key;
      t.where = Where{ctx.file().url, ctx.file().display, f.key_mark, Ptr(mp, f.key)};
      if (!f.value.is_array()) {
        ctx.Error(f.value.mark(), Ptr(mp, f.key), owner,
                  fmt::format("values of partition field `{}` must be a list", f.key),
                  fmt::format("write `{}: [{}]`", f.key, f.value.ToJsonText()));
        continue;
      }
      for (const auto& i : f.value.items()) t.values.push_back(&i);
      (std::string(which) == "include" ? out->include : out->exclude).push_back(std::move(t));
    }
  }
}

void ParseDeadLetters(const Ctx& ctx, const Obj& o, const std::string& owner, std::string* name,
                      Where* where) {
  const Node* v = o.Get("deadLetters");
  if (!v || !o.String(v, "deadLetters", name)) return;
  *where = ctx.At(*v, o.PointerOf("deadLetters"));
  if (name->empty()) {
    ctx.Error(
        v->mark(), o.PointerOf("deadLetters"), owner, "`deadLetters` may not be empty",
        "name the collection that receives dead letters, or omit `deadLetters` to halt on errors");
  }
}

void ParseCaptures(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/captures", "", "`captures` must map names to captures");
    return;
  }
  for (const auto& m : v.members()) {
    CaptureSpec s;
    s.name = m.key;
    std::string p = Ptr("/captures", m.key);
    s.where = Where{ctx.file().url, ctx.file().display, m.key_mark, p};
    std::string owner = fmt::format("capture `{}`", m.key);
    Obj o(ctx, m.value, p, owner, "a capture", {"endpoint", "bindings"});
    if (!o.ok()) continue;
    if (const Node* e = o.Required("endpoint", "where documents come from")) {
      Obj eo(ctx, *e, o.PointerOf("endpoint"), owner, "a capture endpoint", {"fileDrop"});
      if (const Node* fd = eo.Required("fileDrop", "a directory to watch")) {
        Obj fo(ctx, *fd, eo.PointerOf("fileDrop"), owner, "a fileDrop endpoint", {"path", "format"});
        std::string path;
        if (fo.String(fo.Required("path", "the directory to watch"), "path", &path)) {
          if (IsFileUrl(ctx.file().url) && !path.empty() && path[0] != '/') {
            std::filesystem::path dir = std::filesystem::path(FilePathOfUrl(ctx.file().url)).parent_path();
            path = (dir / path).lexically_normal().string();
          }
          s.path = path;
        }
        s.format = "json";
        if (const Node* f = fo.Get("format"); fo.String(f, "format", &s.format)) {
          if (s.format != "json" && s.format != "csv" && s.format != "tsv") {
            ctx.Error(f->mark(), fo.PointerOf("format"), owner,
                      fmt::format("unknown fileDrop format `{}`", s.format),
                      "use json (JSON lines), csv or tsv; gzipped files (.gz) are accepted in each");
          }
        }
      }
    }
    if (const Node* b = o.Required("bindings", "the collections captured into")) {
      if (!b->is_array() || b->items().empty()) {
        ctx.Error(b->mark(), o.PointerOf("bindings"), owner, "`bindings` must be a non-empty list",
                  "e.g. `bindings: [{target: acme/orders}]`");
      } else {
        for (size_t i = 0; i < b->items().size(); ++i) {
          std::string bp = o.PointerOf("bindings") + "/" + std::to_string(i);
          Obj bo(ctx, b->items()[i], bp, owner, "a capture binding", {"target"});
          CaptureSpec::Binding cb;
          if (const Node* t = bo.Required("target", "the collection to capture into")) {
            if (bo.String(t, "target", &cb.target)) {
              cb.where = ctx.At(*t, bo.PointerOf("target"));
              s.bindings.push_back(std::move(cb));
            }
          }
        }
      }
    }
    cat->captures.push_back(std::move(s));
  }
}

void ParseTests(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/tests", "", "`tests` must map test names to lists of steps");
    return;
  }
  for (const auto& m : v.members()) {
    TestSpec t;
    t.name = m.key;
    std::string p = Ptr("/tests", m.key);
    t.where = Where{ctx.file().url, ctx.file().display, m.key_mark, p};
    std::string owner = fmt::format("test `{}`", m.key);
    if (!m.value.is_array()) {
      ctx.Error(m.value.mark(), p, owner, "a test must be a list of `ingest` and `verify` steps");
      continue;
    }
    for (size_t i = 0; i < m.value.items().size(); ++i) {
      const Node& step = m.value.items()[i];
      std::string sp = p + "/" + std::to_string(i);
      std::string sowner = fmt::format("test `{}` step {}", m.key, i);
      Obj so(ctx, step, sp, sowner, "a test step", {"ingest", "verify"});
      if (!so.ok()) continue;
      if (step.members().size() != 1) {
        ctx.Error(step.mark(), sp, sowner, "a test step has exactly one of `ingest` or `verify`");
        continue;
      }
      TestStepSpec s;
      s.where = ctx.At(step, sp);
      const auto& body = step.members()[0];
      std::string bp = Ptr(sp, body.key);
      if (body.key == "ingest") {
        s.kind = TestStepSpec::Kind::kIngest;
      } else if (body.key == "verify") {
        s.kind = TestStepSpec::Kind::kVerify;
      } else {
        continue;
      }
      std::vector<std::string> allowed = {"collection", "documents"};
      if (s.kind == TestStepSpec::Kind::kVerify) allowed.push_back("partitions");
      Obj bo(ctx, body.value, bp, sowner,
             fmt::format("{} `{}` step", s.kind == TestStepSpec::Kind::kIngest ? "an" : "a", body.key),
             allowed);
      if (!bo.ok()) continue;
      if (const Node* c = bo.Required("collection", "the collection")) {
        bo.String(c, "collection", &s.collection);
        s.collection_where = ctx.At(*c, bo.PointerOf("collection"));
      }
      if (const Node* d = bo.Required("documents", "a list of documents")) {
        s.documents_where = ctx.At(*d, bo.PointerOf("documents"));
        if (!d->is_array()) {
          ctx.Error(d->mark(), bo.PointerOf("documents"), sowner, "`documents` must be a list");
        } else {
          s.documents = d;
        }
      }
      if (const Node* ps = bo.Get("partitions")) {
        ParseSelector(ctx, *ps, bo.PointerOf("partitions"), sowner, &s.partitions);
      }
      t.steps.push_back(std::move(s));
    }
    cat->tests.push_back(std::move(t));
  }
}

void ParseNodeDependencies(const Ctx& ctx, const Node& v, Catalog* cat) {
  if (!v.is_object()) {
    ctx.Error(v.mark(), "/nodeDependencies", "",
              "`nodeDependencies` must map npm package names to version ranges",
              "e.g. `nodeDependencies: {moment: ^2.29.0}`");
    return;
  }
  for (const auto& m : v.members()) {
    NodeDependencySpec d;
    d.package = m.key;
    d.where = Where{ctx.file().url, ctx.file().display, m.key_mark, Ptr("/nodeDependencies", m.key)};
    if (!m.value.is_string()) {
      ctx.Error(m.value.mark(), d.where.pointer, "",
                fmt::format("the version of npm package `{}` must be a string, found {}", m.key,
                            Obj::Describe(m.value)),
                "quote version numbers, e.g. \"1.2.0\"");
      continue;
    }
    d.version = m.value.as_string();
    // Several files may declare one package (SPEC 1.2): the same version range merges into
    // the first declaration (in load order), another one is an error naming both places.
    auto same = std::find_if(cat->node_dependencies.begin(), cat->node_dependencies.end(),
                             [&](const NodeDependencySpec& e) { return e.package == d.package; });
    if (same == cat->node_dependencies.end()) {
      cat->node_dependencies.push_back(std::move(d));
    } else if (same->version != d.version) {
      ctx.Error(m.key_mark, d.where.pointer, "",
                fmt::format("npm package `{}` is declared with version range \"{}\" here but \"{}\" at "
                            "{}:{}:{}",
                            d.package, d.version, same->version, same->where.file,
                            same->where.mark.line, same->where.mark.col),
                "every file that declares a package must give the same version range; "
                "declare it once in a file the others import");
    }
  }
}

}  // namespace flow::catalog::parsing

namespace flow::catalog {
namespace {

using doc::Node;
using parsing::Ctx;
using parsing::Obj;

const std::vector<std::string> kTopLevel = {"$schema",          "import",
                                            "collections",      "materializationTargets",
                                            "materializations", "captures",
                                            "tests",            "nodeDependencies"};

}  // namespace

bool IsValidCollectionName(const std::string& name, std::string* why) {
  if (name.empty()) {
    *why = "it is empty";
    return false;
  }
  size_t start = 0;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    std::string seg = name.substr(start, end - start);
    if (seg.empty()) {
      *why = "it has an empty segment (leading, trailing or doubled `/`)";
      return false;
    }
    if (seg == "." || seg == "..") {
      *why = fmt::format("segment `{}` is not allowed", seg);
      return false;
    }
    for (char c : seg) {
      if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) {
        *why = fmt::format("character `{}` is not allowed", c);
        return false;
      }
    }
    start = end + 1;
  }
  return true;
}

void ParseImports(SourceFile* file, Diagnostics* diags) {
  Ctx ctx(*file, diags);
  const Node& root = file->root;
  if (!root.is_object()) {
    if (!root.is_null()) {
      ctx.Error(root.mark(), "", "",
                fmt::format("a catalog source must be a mapping of sections, found {}",
                            Obj::Describe(root)));
    }
    return;
  }
  const Node* imp = root.Find("import");
  if (!imp) return;
  if (!imp->is_array()) {
    ctx.Error(imp->mark(), "/import", "", "`import` must be a list of paths or URLs",
              imp->is_string() ? fmt::format("write `import: [{}]`", imp->as_string()) : "");
    return;
  }
  for (size_t i = 0; i < imp->items().size(); ++i) {
    const Node& n = imp->items()[i];
    if (!n.is_string() || n.as_string().empty()) {
      ctx.Error(n.mark(), "/import/" + std::to_string(i), "",
                fmt::format("an import must be a path or URL, found {}", Obj::Describe(n)));
      continue;
    }
    std::string base, frag;
    SplitFragment(ResolveUrl(file->url, n.as_string()), &base, &frag);
    file->imports.push_back(base);
    file->import_marks.push_back(n.mark());
  }
}

void ParseSections(const SourceFile& file, Catalog* catalog, Diagnostics* diags) {
  Ctx ctx(file, diags);
  const Node& root = file.root;
  if (!root.is_object()) return;  // reported by ParseImports
  Obj top(ctx, root, "", "", "a catalog source", kTopLevel);
  if (const Node* c = root.Find("collections")) {
    if (!c->is_array()) {
      ctx.Error(c->mark(), "/collections", "", "`collections` must be a list of collections",
                c->is_object() ? "start each collection with `- name: ...`" : "");
    } else {
      for (size_t i = 0; i < c->items().size(); ++i) {
        ParseCollection(ctx, c->items()[i], "/collections/" + std::to_string(i), catalog);
      }
    }
  }
  if (const Node* t = root.Find("materializationTargets")) ParseTargets(ctx, *t, catalog);
  if (const Node* m = root.Find("materializations")) ParseMaterializations(ctx, *m, catalog);
  if (const Node* c = root.Find("captures")) ParseCaptures(ctx, *c, catalog);
  if (const Node* t = root.Find("tests")) ParseTests(ctx, *t, catalog);
  if (const Node* n = root.Find("nodeDependencies")) ParseNodeDependencies(ctx, *n, catalog);
}

bool ParseDuration(const std::string& text, int64_t* seconds) {
  if (text.empty()) return false;
  int64_t total = 0;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    int64_t amount = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      amount = amount * 10 + (text[i] - '0');
      if (amount > 1'000'000'000) return false;
      ++i;
    }
    if (i == start || i == text.size()) return false;
    switch (text[i]) {
      case 's': total += amount; break;
      case 'm': total += amount * 60; break;
      case 'h': total += amount * 3600; break;
      case 'd': total += amount * 86400; break;
      default: return false;
    }
    ++i;
  }
  *seconds = total;
  return true;
}

int64_t DerivationSpec::BootstrapTimeoutSeconds() const {
  return lambda_timeout_seconds ? lambda_timeout_seconds : kDefaultLambdaTimeoutSeconds;
}

int64_t DerivationSpec::LambdaTimeoutSeconds(const TransformSpec& t) const {
  return t.lambda_timeout_seconds ? t.lambda_timeout_seconds : BootstrapTimeoutSeconds();
}

const SourceFile* Catalog::File(const std::string& url) const {
  for (const auto& f : files) {
    if (f->url == url) return f.get();
  }
  return nullptr;
}

const CollectionSpec* Catalog::Collection(const std::string& name) const {
  for (const auto& c : collections) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

}  // namespace flow::catalog
