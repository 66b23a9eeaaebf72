# Writes a C++ file defining `extern const char NAME[]`, the bytes of the file IN followed by
# a NUL, in namespace NAMESPACE.
# Run at build time: cmake -DIN=... -DOUT=... -DNAME=... -DNAMESPACE=... -P embed.cmake
# The bytes are written as \xNN escapes, so any content embeds unchanged (a raw string
# literal would end at its delimiter).
foreach(var IN ITEMS IN OUT NAME NAMESPACE)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed.cmake: ${var} is not set")
  endif()
endforeach()
file(READ "${IN}" hex HEX)
# One string literal of 32 bytes a line.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" bytes "${hex}")
string(REPEAT "\\\\x[0-9a-f][0-9a-f]" 32 line)  # CMake's regular expressions have no {n}
string(REGEX REPLACE "(${line})" "\\1\"\n    \"" bytes "${bytes}")
get_filename_component(source "${IN}" NAME)
file(WRITE "${OUT}"
  "// Generated at build time by embed.cmake from ${source}: do not edit.\n"
  "\n"
  "namespace ${NAMESPACE} {\n\n"
  "extern const char ${NAME}[] =\n    \"${bytes}\";\n"
  "\n"
  "}  // namespace ${NAMESPACE}\n")
