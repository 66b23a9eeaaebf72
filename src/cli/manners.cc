#include "cli/manners.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <set>
#include <string_view>
#include <vector>

#include "base/strings.h"
#include "base/version.h"
#include "cli/output.h"

namespace flow::cli {
namespace {

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() && &p == &parts.front() ? "" : sep) + p;
  return out;
}

std::string UnknownCommand(const std::string& word, const std::vector<std::string>& names) {
  std::string hint = DidYouMean(word, names);
  return fmt::format("unknown command `{}`: {}`flowctl help` lists the commands", word,
                     hint.empty() ? "" : hint + " ");
}

// Examples shown at the end of each command's --help (and in the manual page).
const std::map<std::string, std::vector<std::string>>& Examples() {
  static const std::map<std::string, std::vector<std::string>> examples = {
      {"build",
       {"flowctl build", "flowctl build --source catalog/flow.yaml --catalog out/catalog.db",
        "flowctl build --no-type-check"}},
      {"generate-types", {"flowctl generate-types", "flowctl generate-types --output - | less"}},
      {"combine",
       {"flowctl combine --collection acme/orders orders.jsonl",
        "zcat orders.jsonl.gz | flowctl combine --collection acme/orders --combined"}},
      {"ingest",
       {"flowctl ingest acme/orders orders.jsonl", "flowctl ingest acme/orders orders.csv",
        "cat orders.tsv | flowctl ingest acme/orders --format tsv"}},
      {"read",
       {"flowctl read acme/orders", "flowctl read acme/orders --reduced",
        "flowctl read acme/orders --partition region=eu --follow"}},
      {"fsck", {"flowctl fsck", "flowctl fsck --data-dir /var/lib/pipeline"}},
      {"reset", {"flowctl reset --collection acme/orders", "flowctl reset --yes"}},
      {"test", {"flowctl test", "flowctl test --filter totals"}},
      {"run",
       {"flowctl run --until-idle", "flowctl run --materialization acme/to-sqlite",
        "flowctl run --backfill acme/totals --plan"}},
      {"develop",
       {"flowctl develop", "flowctl develop --port 0 --allow-origin http://localhost:3000"}},
      {"materialize",
       {"flowctl materialize --target db --collection acme/orders --table-name orders --dry-run"}},
      {"docs", {"flowctl docs --output site && python3 -m http.server -d site"}},
      {"json-schema", {"flowctl json-schema > flow.schema.json"}},
      {"version", {"flowctl version"}},
      {"help", {"flowctl help", "flowctl help ingest"}},
      {"completion",
       {"source <(flowctl completion bash)", "flowctl completion zsh > \"${fpath[1]}/_flowctl\"",
        "flowctl completion fish > ~/.config/fish/completions/flowctl.fish"}},
      {"man", {"flowctl man | man -l -", "flowctl man > /usr/local/share/man/man1/flowctl.1"}},
  };
  return examples;
}

std::vector<CLI::App*> Commands(CLI::App& app) {
  return app.get_subcommands([](CLI::App*) { return true; });
}

std::vector<std::string> CommandNames(CLI::App& app) {
  std::vector<std::string> names;
  for (CLI::App* sub : Commands(app)) names.push_back(sub->get_name());
  return names;
}

// The flags of `app` (not positionals, not --help), as the completions offer them.
struct Flag {
  std::string long_name;   // without "--"; may be empty
  std::string short_name;  // without "-"; may be empty
  std::string description;
  bool takes_value = false;
  std::vector<std::string> choices;  // from a type name such as TEXT:{continue,backfill}
};

std::vector<Flag> Flags(const CLI::App& app) {
  std::vector<Flag> out;
  for (const CLI::Option* opt : app.get_options()) {
    if (!opt->nonpositional() || opt == app.get_help_ptr()) continue;
    Flag f;
    if (!opt->get_lnames().empty()) f.long_name = opt->get_lnames().front();
    if (!opt->get_snames().empty()) f.short_name = opt->get_snames().front();
    f.description = opt->get_description();
    f.takes_value = opt->get_expected_max() > 0;  // flags expect no value
    std::string type = opt->get_type_name();
    size_t open = type.find('{'), close = type.find('}');
    if (open != std::string::npos && close != std::string::npos && close > open) {
      for (auto& c : Split(type.substr(open + 1, close - open - 1), ',')) f.choices.push_back(std::string(c));
    }
    out.push_back(std::move(f));
  }
  return out;
}

// The positionals of `app`, e.g. "COLLECTION [FILE]".
std::string Positionals(const CLI::App& app) {
  std::string out;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->nonpositional()) continue;
    std::string name = opt->get_name(true);
    out += opt->get_required() ? fmt::format(" {}", name) : fmt::format(" [{}]", name);
  }
  return out;
}

// The first sentence of a description, for one-line summaries.
std::string Summary(const std::string& text, size_t max = 80) {
  std::string s = text;
  size_t stop = s.find(". ");
  if (stop != std::string::npos) s = s.substr(0, stop);
  size_t paren = s.find(" (");
  if (s.size() > max && paren != std::string::npos && paren >= 20) s = s.substr(0, paren);
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string Bash(CLI::App& app) {
  std::string out =
      "# bash completion for flowctl, generated by `flowctl completion bash`.\n"
      "# Load it with: source <(flowctl completion bash)\n"
      "_flowctl() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cmd= i\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    case ${COMP_WORDS[i]} in\n";
  std::vector<std::string> global_values, global_words;
  for (const Flag& f : Flags(app)) {
    if (!f.long_name.empty()) global_words.push_back("--" + f.long_name);
    if (!f.short_name.empty()) global_words.push_back("-" + f.short_name);
    if (f.takes_value && !f.long_name.empty()) global_values.push_back("--" + f.long_name);
  }
  global_words.push_back("--help");
  if (!global_values.empty()) out += fmt::format("      {}) ((i++)) ;;\n", Join(global_values, "|"));
  out +=
      "      -*) ;;\n"
      "      *) cmd=${COMP_WORDS[i]}; break ;;\n"
      "    esac\n"
      "  done\n"
      "  local words=\n"
      "  case \"$cmd $prev\" in\n";
  // Values with choices: those of the global flags (after any command), then each command's.
  auto choices = [&](const std::string& command_pattern, const std::vector<Flag>& flags) {
    for (const Flag& f : flags) {
      if (f.choices.empty() || f.long_name.empty()) continue;
      out += fmt::format("    {} --{}\") words={} ;;\n", command_pattern, f.long_name,
                         ShellQuote(Join(f.choices, " ")));
    }
  };
  choices("*\"", Flags(app));  // the case word is "$cmd $prev", quoted
  for (CLI::App* sub : Commands(app)) choices("\"" + sub->get_name(), Flags(*sub));
  out += "    \"completion \"*) [[ $prev == completion ]] && words='bash zsh fish' ;;\n";
  out += fmt::format("    \"help \"*) [[ $prev == help ]] && words={} ;;\n", ShellQuote(Join(CommandNames(app), " ")));
  out +=
      "  esac\n"
      "  if [[ -n $words ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "    return\n"
      "  fi\n"
      "  case $cmd in\n";
  out += fmt::format("    '') words={} ;;\n", ShellQuote(Join(CommandNames(app), " ") + " " + Join(global_words, " ")));
  for (CLI::App* sub : Commands(app)) {
    std::vector<std::string> words;
    for (const Flag& f : Flags(*sub)) {
      if (!f.long_name.empty()) words.push_back("--" + f.long_name);
      if (!f.short_name.empty()) words.push_back("-" + f.short_name);
    }
    out += fmt::format("    {}) words={} ;;\n", sub->get_name(),
                       ShellQuote(Join(words, " ") + (words.empty() ? "" : " ") + Join(global_words, " ")));
  }
  out +=
      "  esac\n"
      "  if [[ -z $cmd || $cur == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "  fi\n"
      "}\n"
      "complete -o filenames -F _flowctl flowctl\n";
  return out;
}

// Text for zsh's _arguments and _describe specs: no brackets, colons escaped.
std::string ZshText(const std::string& s) {
  std::string out;
  for (char c : Summary(s)) {
    if (c == '[') out += '(';
    else if (c == ']') out += ')';
    else if (c == ':') out += "\\:";
    else if (c == '\'') out += "'\\''";
    else if (c == '\\') out += "\\\\";
    else out += c;
  }
  return out;
}

std::string ZshSpecs(const std::vector<Flag>& flags) {
  std::string out;
  for (const Flag& f : flags) {
    std::string value;
    if (f.takes_value) value = f.choices.empty() ? ":value:_files" : fmt::format(":value:({})", Join(f.choices, " "));
    std::string desc = ZshText(f.description);
    if (!f.long_name.empty() && !f.short_name.empty()) {
      out += fmt::format(" \\\n    '(-{0} --{1})'{{-{0},--{1}}}'[{2}]{3}'", f.short_name, f.long_name, desc, value);
    } else if (!f.long_name.empty()) {
      out += fmt::format(" \\\n    '--{}[{}]{}'", f.long_name, desc, value);
    } else {
      out += fmt::format(" \\\n    '-{}[{}]{}'", f.short_name, desc, value);
    }
  }
  return out;
}

std::string Zsh(CLI::App& app) {
  std::string out =
      "#compdef flowctl\n"
      "# zsh completion for flowctl, generated by `flowctl completion zsh`.\n"
      "# Install it as _flowctl in a directory of $fpath.\n"
      "_flowctl() {\n"
      "  local curcontext=\"$curcontext\" state line ret=1\n"
      "  local -a commands\n"
      "  commands=(\n";
  for (CLI::App* sub : Commands(app)) {
    out += fmt::format("    '{}:{}'\n", sub->get_name(), ZshText(sub->get_description()));
  }
  out += "  )\n";
  out += "  _arguments -C" + ZshSpecs(Flags(app)) +
         " \\\n    '(- *)--help[Print help and exit]' \\\n"
         "    '1: :->command' \\\n    '*:: :->args' && ret=0\n";
  out +=
      "  case $state in\n"
      "    command) _describe -t commands 'flowctl command' commands && ret=0 ;;\n"
      "    args)\n"
      "      case $line[1] in\n";
  for (CLI::App* sub : Commands(app)) {
    std::string name = sub->get_name();
    if (name == "completion") {
      out += "        completion) _arguments '1:shell:(bash zsh fish)' && ret=0 ;;\n";
    } else if (name == "help") {
      out += "        help) _describe -t commands 'flowctl command' commands && ret=0 ;;\n";
    } else {
      out += fmt::format("        {}) _arguments{} \\\n    '(- *)--help[Print help and exit]' \\\n    '*:file:_files' && ret=0 ;;\n",
                         name, ZshSpecs(Flags(*sub)));
    }
  }
  out +=
      "      esac ;;\n"
      "  esac\n"
      "  return ret\n"
      "}\n"
      "_flowctl \"$@\"\n";
  return out;
}

std::string FishFlag(const std::string& condition, const Flag& f) {
  std::string out = "complete -c flowctl";
  if (!condition.empty()) out += " -n " + ShellQuote(condition);
  if (!f.long_name.empty()) out += " -l " + f.long_name;
  if (!f.short_name.empty()) out += " -s " + f.short_name;
  if (f.takes_value) out += f.choices.empty() ? " -r -F" : " -x -a " + ShellQuote(Join(f.choices, " "));
  return out + " -d " + ShellQuote(Summary(f.description)) + "\n";
}

std::string Fish(CLI::App& app) {
  std::string out =
      "# fish completion for flowctl, generated by `flowctl completion fish`.\n"
      "# Install it as ~/.config/fish/completions/flowctl.fish\n"
      "complete -c flowctl -f\n";
  std::string names = Join(CommandNames(app), " ");
  for (const Flag& f : Flags(app)) out += FishFlag("", f);
  out += "complete -c flowctl -l help -s h -d 'Print help and exit'\n";
  for (CLI::App* sub : Commands(app)) {
    out += fmt::format("complete -c flowctl -n __fish_use_subcommand -a {} -d {}\n", sub->get_name(),
                       ShellQuote(Summary(sub->get_description())));
  }
  for (CLI::App* sub : Commands(app)) {
    std::string name = sub->get_name();
    std::string when = "__fish_seen_subcommand_from " + name;
    if (name == "completion") {
      out += fmt::format("complete -c flowctl -n {} -x -a 'bash zsh fish'\n", ShellQuote(when));
      continue;
    }
    if (name == "help") {
      out += fmt::format("complete -c flowctl -n {} -x -a {}\n", ShellQuote(when), ShellQuote(names));
      continue;
    }
    for (const Flag& f : Flags(*sub)) out += FishFlag(when, f);
    if (!Positionals(*sub).empty()) out += fmt::format("complete -c flowctl -n {} -F\n", ShellQuote(when));
  }
  return out;
}

// roff text: backslashes escaped, hyphens as minus signs in flags, no control line starts.
std::string Roff(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    auto u = static_cast<unsigned char>(c);
    if (c == '\\') {
      out += "\\e";
    } else if (c == '-') {
      out += "\\-";
    } else if (u >= 0xC0) {  // a UTF-8 sequence: groff's \[uXXXX] (groff reads Latin-1)
      size_t len = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : 2;
      uint32_t cp = u & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
      for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
      out += fmt::format("\\[u{:04X}]", cp);
      i += len - 1;
    } else if (u >= 0x80) {
      out += '?';  // a stray continuation byte
    } else {
      out += c;
    }
  }
  std::string lines;
  for (auto& line : Split(out, '\n')) {
    if (!lines.empty()) lines += '\n';
    if (!line.empty() && (line[0] == '.' || line[0] == '\'')) lines += "\\&";
    lines += line;
  }
  return lines;
}

std::string RoffFlags(const std::vector<Flag>& flags) {
  std::string out;
  for (const Flag& f : flags) {
    std::string names;
    if (!f.short_name.empty()) names += "\\fB\\-" + f.short_name + "\\fR";
    if (!f.long_name.empty()) names += (names.empty() ? "" : ", ") + std::string("\\fB\\-\\-") + Roff(f.long_name) + "\\fR";
    if (f.takes_value) {
      names += f.choices.empty() ? " \\fIVALUE\\fR" : " \\fI" + Roff(Join(f.choices, "|")) + "\\fR";
    }
    out += ".TP\n" + names + "\n" + Roff(f.description) + "\n";
  }
  return out;
}

// A footer's paragraphs (blank-line separated), as roff paragraphs; an "Examples:" block is
// set without filling.
std::string RoffFooter(const std::string& footer) {
  std::string out;
  bool examples = false;
  for (auto& line : Split(footer, '\n')) {
    std::string l(line);
    if (l == "Examples:") {
      out += ".PP\nExamples:\n.PP\n.RS\n.nf\n";
      examples = true;
      continue;
    }
    if (examples && l.starts_with("  ")) {
      out += Roff(l.substr(2)) + "\n";
      continue;
    }
    if (examples) {
      out += ".fi\n.RE\n";
      examples = false;
    }
    out += l.empty() ? ".PP\n" : Roff(l) + "\n";
  }
  if (examples) out += ".fi\n.RE\n";
  return out;
}

}  // namespace

std::string CompletionScript(CLI::App& app, const std::string& shell) {
  if (shell == "bash") return Bash(app);
  if (shell == "zsh") return Zsh(app);
  return Fish(app);
}

std::string ManPage(CLI::App& app) {
  std::string out = fmt::format(".TH FLOWCTL 1 \"\" \"flowctl {}\" \"User Commands\"\n", kVersion);
  out += ".SH NAME\nflowctl \\- " + Roff(Summary(app.get_description().substr(app.get_description().find(": ") + 2), 200)) + "\n";
  out +=
      ".SH SYNOPSIS\n.B flowctl\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGUMENTS\\fR]\n"
      ".SH DESCRIPTION\n" +
      Roff(app.get_description()) +
      "\n.PP\nGlobal options are accepted before or after the command. "
      "\\fBflowctl help\\fR \\fICOMMAND\\fR prints a command's options.\n"
      ".SH GLOBAL OPTIONS\n" +
      RoffFlags(Flags(app)) +
      ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nPrint help and exit.\n"
      ".SH COMMANDS\n";
  for (CLI::App* sub : Commands(app)) {
    out += fmt::format(".SS \"flowctl {}{}{}\"\n", sub->get_name(), Flags(*sub).empty() ? "" : " [OPTIONS]",
                       Roff(Positionals(*sub)));
    out += Roff(sub->get_description()) + "\n";
    for (const CLI::Option* opt : sub->get_options()) {
      if (opt->nonpositional()) continue;
      out += fmt::format(".TP\n\\fI{}\\fR\n{}\n", Roff(opt->get_name(true)), Roff(opt->get_description()));
    }
    out += RoffFlags(Flags(*sub));
    std::string footer = sub->get_footer();
    if (footer != app.get_footer()) out += RoffFooter(footer);
  }
  out +=
      ".SH EXIT STATUS\n"
      "0 success; 1 a user error (bad input, a failed test, a catalog with errors: nothing is "
      "written); 2 a usage error; 3 an environment problem (the data directory is locked or "
      "cannot be written, Node.js is missing); 130 and 143 interrupted by SIGINT or SIGTERM.\n"
      ".SH ENVIRONMENT\n"
      ".TP\n\\fBNO_COLOR\\fR\nWhen set, output is never coloured.\n"
      ".TP\n\\fBTMPDIR\\fR\nWhere spill files and test data directories go (default /tmp).\n"
      ".SH SEE ALSO\n"
      "The documentation in the \\fIdocs\\fR directory of the flowctl sources, and "
      "\\fBflowctl docs\\fR for a catalog's own documentation site.\n";
  return out;
}

void AddExamples(CLI::App& app) {
  for (CLI::App* sub : Commands(app)) {
    auto found = Examples().find(sub->get_name());
    if (found == Examples().end()) continue;
    std::string footer = sub->get_footer();
    if (footer == app.get_footer()) footer.clear();  // inherited from the app
    if (footer.find("Examples:") != std::string::npos) continue;  // the command has its own
    std::string text = footer.empty() ? "" : footer + "\n\n";
    text += "Examples:";
    for (const auto& e : found->second) text += "\n  " + e;
    sub->footer(text);
  }
}

std::optional<std::string> CheckCommandWord(CLI::App& app, int argc, char** argv) {
  std::set<std::string> value_flags;
  for (const Flag& f : Flags(app)) {
    if (f.takes_value && !f.long_name.empty()) value_flags.insert("--" + f.long_name);
  }
  std::vector<std::string> names = CommandNames(app);
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help" || a == "--version") return std::nullopt;
    if (value_flags.count(a)) {
      ++i;
      continue;
    }
    if (a.starts_with("-")) continue;
    for (const auto& n : names) {
      if (n == a) return std::nullopt;
    }
    return UnknownCommand(a, names);
  }
  return fmt::format("a command is required, one of: {} (`flowctl help` says what each does)", Join(names, ", "));
}

Command RegisterHelp(CLI::App& app) {
  auto command = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("help", "Print the list of commands, or a command's options");
  cmd->add_option("COMMAND", *command, "The command to describe");
  return {cmd, [&app, command](const GlobalOptions&) {
            if (command->empty()) {
              // (app.help() would describe the selected subcommand, `help` itself)
              fmt::print("{}", app.get_formatter()->make_help(&app, "flowctl", CLI::AppFormatMode::Normal));
              return kExitOk;
            }
            for (CLI::App* sub : Commands(app)) {
              if (sub->get_name() == *command) {
                fmt::print("{}", sub->help("flowctl"));
                return kExitOk;
              }
            }
            PrintError(UnknownCommand(*command, CommandNames(app)));
            return kExitUsage;
          }};
}

Command RegisterCompletion(CLI::App& app) {
  auto shell = std::make_shared<std::string>();
  auto* cmd = app.add_subcommand("completion", "Print a shell completion script for bash, zsh or fish");
  cmd->add_option("SHELL", *shell, "bash, zsh or fish")->required()->check(CLI::IsMember({"bash", "zsh", "fish"}));
  return {cmd, [&app, shell](const GlobalOptions&) {
            fmt::print("{}", CompletionScript(app, *shell));
            return kExitOk;
          }};
}

Command RegisterMan(CLI::App& app) {
  auto* cmd = app.add_subcommand("man", "Print the manual page flowctl(1), in roff");
  return {cmd, [&app](const GlobalOptions&) {
            fmt::print("{}", ManPage(app));
            return kExitOk;
          }};
}

}  // namespace flow::cli
