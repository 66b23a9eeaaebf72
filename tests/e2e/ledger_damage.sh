#!/usr/bin/env bash
# A damaged data directory is refused, never silently truncated (issue 16 item 2, SPEC 9):
# a ledger record that fails its checksum with intact records after it, an emptied or
# deleted ledger beside the lake, and a fragment of each codec whose content no longer
# matches the SHA-1 in its name. `read` and `ingest` exit 3 naming the file and what to
# do, nothing is changed (a later ingest cannot truncate committed data away), and
# `flowctl fsck` reports the damage (exit 1) and what verifies. A torn final ledger record
# (a crash mid-write) still recovers silently, and fsck calls it a note, not damage.
source "$(dirname "$0")/lib.sh"
cd "$WORK"

cat >flow.yaml <<'YAML'
collections:
  - name: t/gz
    key: [/id]
    schema: {type: object, properties: {id: {type: integer}, n: {type: integer}}, required: [id]}
  - name: t/zst
    key: [/id]
    journals: {fragments: {compressionCodec: zstd}}
    schema: {type: object, properties: {id: {type: integer}, n: {type: integer}}, required: [id]}
  - name: t/raw
    key: [/id]
    journals: {fragments: {compressionCodec: none}}
    schema: {type: object, properties: {id: {type: integer}, n: {type: integer}}, required: [id]}
YAML

# make_dir D: four commits of two documents each to t/gz (ingest persists them as fragments).
make_dir() {
  rm -rf "$1"
  local i
  for i in 1 2 3 4; do
    printf '{"id":%d,"n":%d}\n{"id":%d,"n":%d}\n' $((i * 10)) "$i" $((i * 10 + 1)) "$i" >"in$i.jsonl"
    expect_status 0 "$FLOWCTL" ingest t/gz "in$i.jsonl" --data-dir "$1"
  done
  expect_status 0 "$FLOWCTL" read t/gz --data-dir "$1"
  expect_eq "documents in $1" "$(wc -l <"$WORK/out")" 8
}

# flip FILE OFFSET: overwrites the byte at OFFSET with another one.
flip() {
  local old
  old=$(dd if="$1" bs=1 skip="$2" count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
  printf "$(printf '\\%03o' $(((old + 1) % 256 == 10 ? 11 : (old + 1) % 256)))" |
    dd of="$1" bs=1 seek="$2" count=1 conv=notrunc 2>/dev/null
}

# snapshot D: a checksum of every file of D but LOCK, to show nothing changed.
snapshot() { (cd "$1" && find . -type f ! -name LOCK -print0 | sort -z | xargs -0 sha1sum); }

# refused D WHAT: read, ingest and run refuse D with exit 3 naming WHAT; nothing changes.
refused() {
  local before
  before=$(snapshot "$1")
  expect_status 3 "$FLOWCTL" read t/gz --data-dir "$1"
  expect_err "$2"
  expect_err "flowctl fsck --data-dir $1"
  [[ ! -s $WORK/out ]] || fail "$1: read printed documents of a damaged directory"
  echo '{"id":99,"n":9}' >more.jsonl
  expect_status 3 "$FLOWCTL" ingest t/gz more.jsonl --data-dir "$1"
  expect_err "$2"
  grep -q Offsets "$WORK/out" && fail "$1: ingest acknowledged a write into a damaged directory"
  expect_eq "$1 unchanged by read and ingest" "$(snapshot "$1")" "$before"
  expect_status 1 "$FLOWCTL" fsck --data-dir "$1"
  grep -q '^DAMAGED: ' "$WORK/out" || fail "$1: fsck reports no damage: $(cat "$WORK/out")"
  grep -q '^result: damaged' "$WORK/out" || fail "$1: fsck result: $(cat "$WORK/out")"
  expect_eq "$1 unchanged by fsck" "$(snapshot "$1")" "$before"
}

# --- A clean directory: fsck exits 0.
make_dir clean
expect_status 0 "$FLOWCTL" fsck --data-dir clean
grep -q '^result: clean' "$WORK/out" || fail "fsck of a clean directory: $(cat "$WORK/out")"
grep -q 'fragments: 4 (4 verified)' "$WORK/out" || fail "fsck counts: $(cat "$WORK/out")"

# --- One byte overwritten inside the 2nd of 4 commit records (the ledger's first record
# names no heads: it marks the ledger as created).
make_dir d1
mapfile -t starts < <(awk 'BEGIN{o=0} {print o; o+=length($0)+1}' d1/ledger)
((${#starts[@]} == 5)) || fail "expected 5 ledger records (a header and 4 commits), found ${#starts[@]}"
flip d1/ledger $((starts[2] + 20))
refused d1 "ledger d1/ledger is damaged at byte offset ${starts[2]}"
grep -q "salvage: the ledger's first 2 record(s)" "$WORK/out" || fail "fsck salvage: $(cat "$WORK/out")"
grep -q "salvage: 4 of 4 fragment(s) verify" "$WORK/out" || fail "fsck fragments: $(cat "$WORK/out")"

# The line end between the 3rd and 4th commit records: the two merge into one bad line,
# and the 4th is still found intact after it.
make_dir d1b
mapfile -t starts < <(awk 'BEGIN{o=0} {print o; o+=length($0)+1}' d1b/ledger)
flip d1b/ledger $((starts[4] - 1))
refused d1b "is damaged at byte offset ${starts[3]}"

# --- The ledger emptied, or deleted.
make_dir d2
: >d2/ledger
refused d2 "its ledger d2/ledger is empty"
make_dir d3
rm d3/ledger
refused d3 "its ledger d3/ledger is missing"

# --- The last commit record damaged after its commit was persisted: the fragment beyond
# the head the ledger names shows that committed records were lost.
make_dir d4
size=$(stat -c %s d4/ledger)
flip d4/ledger $((size - 5))
refused d4 "the ledger lost committed records"

# --- Spools without a ledger (develop killed, then the ledger removed).
mkdir -p d5
echo '{"id":1}' >one.jsonl
expect_status 0 "$FLOWCTL" ingest t/gz one.jsonl --data-dir d5
mkdir -p d5/spool/t/gz/pivot=00
mv d5/lake/t/gz/pivot=00/*/*/* one.frag
gzip -dc one.frag >"d5/spool/t/gz/pivot=00/0000000000000000-1700000000.gz.spool"
rm -rf d5/lake/t one.frag d5/ledger
refused d5 "holds 0 fragment(s) and 1 spool(s), but its ledger d5/ledger is missing"

# --- A byte of a fragment's content changed, for each codec: gz and zst fragments are
# rewritten as valid streams of the changed content (so only the SHA-1 tells), raw ones
# have a byte flipped in place.
for codec in gz zst raw; do
  rm -rf "f$codec"
  printf '{"id":1,"n":1}\n{"id":2,"n":2}\n' >f.jsonl
  expect_status 0 "$FLOWCTL" ingest "t/$codec" f.jsonl --data-dir "f$codec"
  frag=$(find "f$codec/lake" -type f)
  [[ $frag == *.$codec ]] || fail "t/$codec fragment is $frag"
  case $codec in
    gz) gzip -dc "$frag" | sed 's/"n":2/"n":3/' | gzip -c >x && mv x "$frag" ;;
    zst) zstd -dcq "$frag" | sed 's/"n":2/"n":3/' | zstd -qc >x && mv x "$frag" ;;
    raw) sed -i 's/"n":2/"n":3/' "$frag" ;;
  esac
  expect_status 3 "$FLOWCTL" read "t/$codec" --data-dir "f$codec"
  expect_err "fragment $frag is damaged: the SHA-1 of its content is"
  grep -q '"n":3' "$WORK/out" && fail "$codec: read printed the altered document"
  expect_status 1 "$FLOWCTL" fsck --data-dir "f$codec"
  grep -qF "DAMAGED: fragment $frag is damaged" "$WORK/out" || fail "fsck $codec: $(cat "$WORK/out")"
  grep -q "salvage: 0 of 1 fragment(s) verify" "$WORK/out" || fail "fsck $codec salvage: $(cat "$WORK/out")"
done
# A gz fragment with a byte of its compressed stream flipped: an error naming it.
rm -rf fg2
printf '{"id":1,"n":1}\n{"id":2,"n":2}\n' >f.jsonl
expect_status 0 "$FLOWCTL" ingest t/gz f.jsonl --data-dir fg2
frag=$(find fg2/lake -type f)
flip "$frag" 20
expect_status 3 "$FLOWCTL" read t/gz --data-dir fg2
expect_err "fragment $frag"
expect_status 1 "$FLOWCTL" fsck --data-dir fg2
grep -qF "DAMAGED: fragment $frag" "$WORK/out" || fail "fsck gz stream: $(cat "$WORK/out")"

# --- A torn final record (a crash while appending it) recovers silently, as before; fsck
# calls it a note.
make_dir t1
size=$(stat -c %s t1/ledger)
last=$(tail -n 1 t1/ledger)
printf '%s' "${last:0:30}" >>t1/ledger
expect_status 0 "$FLOWCTL" fsck --data-dir t1
grep -q "^note: ledger .* 30 byte(s) after the last intact record (offset $size) are a torn final write" "$WORK/out" ||
  fail "fsck torn tail: $(cat "$WORK/out")"
expect_status 0 "$FLOWCTL" read t/gz --data-dir t1
expect_eq "documents after a torn tail" "$(wc -l <"$WORK/out")" 8
echo '{"id":99,"n":9}' >more.jsonl
expect_status 0 "$FLOWCTL" ingest t/gz more.jsonl --data-dir t1
expect_status 0 "$FLOWCTL" read t/gz --data-dir t1
expect_eq "documents after recovering a torn tail" "$(wc -l <"$WORK/out")" 9
# A whole final record with a wrong checksum (a crash may leave the record's last block
# written and an earlier one not): a tail too.
make_dir t2
printf '00000000 {"heads":{"t/gz/pivot=00":99999}}\n' >>t2/ledger
expect_status 0 "$FLOWCTL" ingest t/gz more.jsonl --data-dir t2
expect_status 0 "$FLOWCTL" read t/gz --data-dir t2
expect_eq "documents after an invalid final record" "$(wc -l <"$WORK/out")" 9
# But a record cut short whose commit already reached the lake is no torn write (fragments
# are written only after their commit record is synced): refused.
make_dir t3
size=$(stat -c %s t3/ledger)
truncate -s $((size - 7)) t3/ledger
refused t3 "the ledger lost committed records"

# --- fsck of a directory that does not exist.
expect_status 3 "$FLOWCTL" fsck --data-dir nowhere
expect_err "data directory nowhere does not exist"

finish
