# fuzz/targets.cmake — the libFuzzer targets (included by CMakeLists.txt with LS_FUZZ=ON).
# The core is instrumented for coverage and built with ASan+UBSan; each target is one C
# file in fuzz/ linked with libFuzzer's main. fuzz/run builds and runs them.

if(NOT CMAKE_C_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "LS_FUZZ needs clang (libFuzzer): configure with CC=clang")
endif()
set(LS_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
                  -fno-omit-frame-pointer -gline-tables-only)
target_compile_options(lscore PRIVATE ${LS_FUZZ_FLAGS})
if(LS_FUZZ_PLANTED_BUG)
  target_compile_definitions(lscore PRIVATE LS_FUZZ_PLANTED_BUG=1)
endif()

set(LS_FUZZ_TARGETS frame_path fdb_ops stream_parser vxlan_vde filter_compile control_input)
list(APPEND LS_FUZZ_TARGETS vhost_msg) # the vhost-user message parser and descriptor walker
foreach(t ${LS_FUZZ_TARGETS})
  if(NOT EXISTS ${CMAKE_SOURCE_DIR}/fuzz/${t}.c)
    continue()
  endif()
  add_executable(fuzz_${t} fuzz/${t}.c)
  target_compile_options(fuzz_${t} PRIVATE ${LS_FUZZ_FLAGS})
  target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer,address,undefined)
  target_link_libraries(fuzz_${t} PRIVATE lscore)
  set_target_properties(fuzz_${t} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endforeach()
# control_input also fuzzes the executable's own parsers (line framing, JSON).
if(TARGET fuzz_control_input)
  target_sources(fuzz_control_input PRIVATE src/cli/json.c src/cli/ctlline.c)
  target_include_directories(fuzz_control_input PRIVATE src/cli ${LUA_INCLUDE_DIRS})
endif()
