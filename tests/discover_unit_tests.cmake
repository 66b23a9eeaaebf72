# Lists the doctest cases of the unit test binary (run after each build of it) and writes a
# CTest file with one entry per case, `unit/<case name>`, so that a failure names its case.
# The PostgreSQL cases share one server per process (tests/unit/postgres_test.cc starts it),
# so they stay together in one entry, `unit/postgres`. A case doctest skips (a benchmark
# marked doctest::skip) is reported by CTest as not run, not as passed.
#   cmake -DEXE=<unit_tests> -DOUT=<file> -P discover_unit_tests.cmake
execute_process(COMMAND "${EXE}" --list-test-cases --no-version OUTPUT_VARIABLE listing RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${EXE} --list-test-cases failed (${rc}): ${listing}")
endif()
string(REPLACE ";" "\\;" listing "${listing}")
string(REPLACE "\n" ";" lines "${listing}")
set(script "")
set(postgres FALSE)
foreach(name IN LISTS lines)
  if(name STREQUAL "" OR name MATCHES "^\\[doctest\\]" OR name MATCHES "^=+$")
    continue()
  endif()
  if(name MATCHES "^postgres:")
    set(postgres TRUE)
    continue()
  endif()
  # doctest's filter: a comma separates names (escaped as `\,`); `*` and `?` are wildcards,
  # which match themselves too. Bracket arguments keep every other character as it is.
  string(REPLACE "," "\\," filter "${name}")
  string(APPEND script "add_test([==[unit/${name}]==] [==[${EXE}]==] [==[--test-case=${filter}]==])\n")
  string(APPEND script "set_tests_properties([==[unit/${name}]==] PROPERTIES SKIP_REGULAR_EXPRESSION [==[test cases: 0 [|]]==])\n")
endforeach()
if(postgres)
  string(APPEND script "add_test(unit/postgres \"${EXE}\" \"--test-case=postgres:*\")\n")
endif()
file(WRITE "${OUT}" "${script}")
