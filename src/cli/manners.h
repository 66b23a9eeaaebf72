// The command line's own manners, apart from any one command: `help`, `completion`, `man`,
// the examples every `--help` ends with, and "did you mean" for a mistyped command. The
// completion scripts and the manual page are generated from the registered commands and
// their flags, so they cannot drift from `--help`.
#pragma once

#include <optional>
#include <string>

#include "cli/command.h"

namespace flow::cli {

// `flowctl help [COMMAND]`: the overview, or one command's --help, on stdout.
Command RegisterHelp(CLI::App& app);
// `flowctl completion bash|zsh|fish`: a completion script on stdout.
Command RegisterCompletion(CLI::App& app);
// `flowctl man`: the manual page flowctl(1), in roff, on stdout.
Command RegisterMan(CLI::App& app);

// Appends an "Examples:" section to the footer of each registered command that has examples.
void AddExamples(CLI::App& app);

// Before parsing: when the first word that is not a global flag (or its value) is not a
// command, the error to print ("unknown command `buidl`", with "did you mean" when one is
// close); when there is no command at all, an error listing them. nullopt when the line
// names a command or asks for --help or --version.
std::optional<std::string> CheckCommandWord(CLI::App& app, int argc, char** argv);

// Generators, for tests: the scripts and the page for `app` as registered.
std::string CompletionScript(CLI::App& app, const std::string& shell);
std::string ManPage(CLI::App& app);

}  // namespace flow::cli
