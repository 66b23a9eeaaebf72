# Writes the man page and the shell completions into OUT from the built executable FLOWCTL.
# Usage: cmake -DFLOWCTL=path/to/flowctl -DOUT=dir -P generate.cmake
file(MAKE_DIRECTORY ${OUT})
function(generate name)
  execute_process(COMMAND ${FLOWCTL} ${ARGN} OUTPUT_FILE ${OUT}/${name}.tmp RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "`flowctl ${ARGN}` failed (${rc})")
  endif()
  file(RENAME ${OUT}/${name}.tmp ${OUT}/${name})
endfunction()
generate(flowctl.1 man)
generate(flowctl.bash completion bash)
generate(_flowctl completion zsh)
generate(flowctl.fish completion fish)
