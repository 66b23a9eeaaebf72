#!/usr/bin/env bash
# The command line's manners: --version, `help`, "did you mean" for a mistyped command, the
# program's own name in usage lines, examples in every --help, global flags after the
# command, shell completions that complete (bash and fish run them; zsh parses them), and
# a manual page groff formats without a warning.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

expect_status 0 "$FLOWCTL" version
version=$(cat out)
expect_status 0 "$FLOWCTL" --version
expect_eq "--version" "$(cat out)" "$version"

# help: the overview lists every command; `help CMD` is CMD's --help.
expect_status 0 "$FLOWCTL" help
grep -q '^Usage: flowctl \[OPTIONS\] COMMAND' out || fail "help usage: $(head -3 out)"
commands=$(sed -n '/^Commands:/,/^$/p' out | awk 'NF && !/^Commands:/ {print $1}')
for c in build combine ingest read fsck reset test run develop materialize docs json-schema generate-types version help completion man; do
  grep -qx "$c" <<< "$commands" || fail "help does not list $c"
done
for c in $commands; do
  expect_status 0 "$FLOWCTL" help "$c"
  cp out help.txt
  expect_status 0 "$FLOWCTL" "$c" --help
  cmp -s out help.txt || fail "\`help $c\` differs from \`$c --help\`"
  # The program is named flowctl (not the path it was run by) and every command has examples.
  grep -q "^Usage: flowctl $c" out || fail "$c --help usage line: $(sed -n 2p out)"
  grep -q '^Examples:$' out || fail "$c --help has no examples"
  sed -n '/^Examples:$/,/^[^ ]/p' out | grep '^  ' > examples.txt
  [[ -s examples.txt ]] || fail "$c --help: no example under Examples:"
  grep -v 'flowctl' examples.txt && fail "$c --help: an example without flowctl"
done

# Mistyped and missing commands: exit 2, with the closest command.
expect_status 2 "$FLOWCTL" buidl
expect_err 'unknown command `buidl`: did you mean `build`? `flowctl help` lists the commands'
expect_status 2 "$FLOWCTL" --log-level debug ingets data.jsonl
expect_err 'did you mean `ingest`?'
expect_status 2 "$FLOWCTL" help ingst
expect_err 'unknown command `ingst`: did you mean `ingest`?'
expect_status 2 "$FLOWCTL" xyzzy
expect_err 'unknown command `xyzzy`: `flowctl help` lists the commands'
expect_status 2 "$FLOWCTL"
expect_err 'a command is required, one of: init, infer-schema, build, combine, ingest'
expect_status 2 "$FLOWCTL" --log-format json
node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n")) JSON.parse(l)' err ||
  fail "--log-format json: stderr is not JSON records: $(cat err)"

# Global flags after the command: colour on a terminal (script(1) gives one) unless --no-color.
printf 'collections: 3\n' > bad.yaml
env -u NO_COLOR script -qc "\"$FLOWCTL\" build --source bad.yaml --catalog c.db" /dev/null > tty.txt || true
grep -q $'\033\[' tty.txt || fail "no colour on a terminal: $(cat -v tty.txt)"
env -u NO_COLOR script -qc "\"$FLOWCTL\" build --source bad.yaml --catalog c.db --no-color" /dev/null > tty.txt || true
grep -q 'error:' tty.txt || fail "build on a terminal: $(cat -v tty.txt)"
if grep -q $'\033\[' tty.txt; then fail "--no-color after the command still colours: $(cat -v tty.txt)"; fi
expect_status 1 "$FLOWCTL" build --source bad.yaml --catalog c.db --log-format json
node -e 'const r = require("fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map(JSON.parse);
  if (!r.some((x) => x.level === "error")) process.exit(1)' err || fail "--log-format json after the command: $(cat err)"

# bash: the generated function completes commands, flags and their values.
expect_status 0 "$FLOWCTL" completion bash
cp out flowctl.bash
bash -n flowctl.bash || fail "bash completion does not parse"
complete_bash() {  # WORDS...: the completions of the last word
  bash -c 'source flowctl.bash; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _flowctl; printf "%s\n" "${COMPREPLY[@]}"' \
    complete "$@"
}
expect_eq "bash: a command" "$(complete_bash flowctl bui)" "build"
expect_eq "bash: after a global flag's value" "$(complete_bash flowctl --log-level debug ing)" "ingest"
expect_eq "bash: a flag" "$(complete_bash flowctl ingest --form)" "--format"
expect_eq "bash: a flag's values" "$(complete_bash flowctl run --on-change '')" "$(printf 'continue\nbackfill')"
expect_eq "bash: a global flag's values" "$(complete_bash flowctl build --log-format j)" "json"
expect_eq "bash: completion's shells" "$(complete_bash flowctl completion '')" "$(printf 'bash\nzsh\nfish')"
touch orders.jsonl
expect_eq "bash: files as arguments" "$(complete_bash flowctl ingest acme/orders ord)" "orders.jsonl"

# fish: run its completion of partial lines.
expect_status 0 "$FLOWCTL" completion fish
cp out flowctl.fish
if command -v fish > /dev/null; then
  fish -n flowctl.fish || fail "fish completion does not parse"
  complete_fish() { fish -c "source flowctl.fish; complete -C '$1'" | cut -f1; }
  expect_eq "fish: a command" "$(complete_fish 'flowctl bui')" "build"
  complete_fish 'flowctl ingest --' | grep -x -- '--format' >/dev/null || fail "fish: ingest flags: $(complete_fish 'flowctl ingest --')"
  expect_eq "fish: a flag's values" "$(complete_fish 'flowctl run --on-change ' | sort)" "$(printf 'backfill\ncontinue')"
else
  echo "fish is not installed (scripts/setup.sh --test installs it): fish completion not run"
fi

# zsh: the script parses and defines every command.
expect_status 0 "$FLOWCTL" completion zsh
cp out _flowctl
head -1 _flowctl | grep -x '#compdef flowctl' >/dev/null || fail "zsh: no #compdef line"
if command -v zsh > /dev/null; then
  zsh -n _flowctl || fail "zsh completion does not parse"
  zsh -fc 'autoload -U compinit && compinit -u -D && fpath=(. $fpath) && autoload -U _flowctl && whence -w _flowctl' \
    > zsh.out 2>&1 || fail "zsh cannot load the completion: $(cat zsh.out)"
else
  echo "zsh is not installed (scripts/setup.sh --test installs it): zsh completion only checked for its commands"
fi
for c in $commands; do grep -q "^    '$c:" _flowctl || fail "zsh: no command $c"; done
expect_status 2 "$FLOWCTL" completion tcsh
expect_err "tcsh not in {bash,zsh,fish}"

# The manual page: groff formats it without warnings; it documents every command.
expect_status 0 "$FLOWCTL" man
cp out flowctl.1
groff -man -Tutf8 -ww -z flowctl.1 2> groff.err || fail "groff fails on the manual page"
[[ ! -s groff.err ]] || fail "groff warns about the manual page: $(head -5 groff.err)"
for c in $commands; do grep -q "^\.SS \"flowctl $c" flowctl.1 || fail "man: no section for $c"; done
grep -q "^\.TH FLOWCTL 1 .*\"${version}\"" flowctl.1 || fail "man: the version is not ${version}: $(head -1 flowctl.1)"
finish
