# Tests: C unit tests of the core (spec/c) and busted specs (spec/*_spec.lua), all
# through ctest. The busted interpreter is pinned to lua5.4; the specs load the module
# from this build tree.

find_program(LUA54 lua5.4 REQUIRED)
find_program(BUSTED busted REQUIRED)

foreach(t fdb ring frame offload stream)
  add_executable(test_${t} spec/c/test_${t}.c)
  target_link_libraries(test_${t} PRIVATE lscore)
  add_test(NAME c/${t} COMMAND test_${t})
endforeach()
# vhost-user: the protocol parser and chain walker, and the port against a fake front-end
add_executable(test_vhost spec/c/test_vhost.c)
target_link_libraries(test_vhost PRIVATE lscore)
add_test(NAME c/vhost COMMAND test_vhost)

set(LS_TEST_ENV
  "LUA_PATH=${CMAKE_SOURCE_DIR}/lua/?.lua\;${CMAKE_SOURCE_DIR}/lua/?/init.lua\;${CMAKE_SOURCE_DIR}/spec/?.lua\;\;"
  "LUA_CPATH=${CMAKE_BINARY_DIR}/lib/?.so\;\;"
  "LUASWITCH_BIN=${CMAKE_BINARY_DIR}/luaswitch"
  "LUASWITCH_SOURCE=${CMAKE_SOURCE_DIR}"
  "LUASWITCH_BUILD=${CMAKE_BINARY_DIR}")
# Under a sanitizer the specs run in the instrumented luaswitch executable (which has
# luaswitch.core built in) rather than in lua5.4 with the sanitizer's runtime preloaded:
# a preloaded runtime is inherited by every program the specs start (ip, ping, tcpdump),
# and breaks them (TSan crashes them, LSan fails them on their own leaks).
if(LS_SANITIZE STREQUAL "address")
  set(LS_SPEC_RUNNER $<TARGET_FILE:luaswitch>)
  list(APPEND LS_TEST_ENV "LS_SANITIZER=address"
       "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_odr_violation=0"
       "LSAN_OPTIONS=suppressions=${CMAKE_SOURCE_DIR}/spec/lsan.supp:print_suppressions=0"
       "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1")
elseif(LS_SANITIZE STREQUAL "thread")
  set(LS_SPEC_RUNNER $<TARGET_FILE:luaswitch>)
  list(APPEND LS_TEST_ENV "LS_SANITIZER=thread"
       "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1")
endif()
if(NOT LS_SPEC_RUNNER)
  set(LS_SPEC_RUNNER ${LUA54})
endif()

file(GLOB LS_SPECS RELATIVE ${CMAKE_SOURCE_DIR}/spec ${CMAKE_SOURCE_DIR}/spec/*_spec.lua)
list(SORT LS_SPECS)
foreach(spec ${LS_SPECS})
  string(REGEX REPLACE "_spec\\.lua$" "" name ${spec})
  add_test(NAME spec/${name}
           COMMAND ${LS_SPEC_RUNNER} ${BUSTED} -o utfTerminal
                   ${CMAKE_SOURCE_DIR}/spec/${spec}
           WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  set_tests_properties(spec/${name} PROPERTIES ENVIRONMENT "${LS_TEST_ENV}" TIMEOUT 300)
endforeach()
# The soak runs a minute by default, and ten with LS_SOAK_SECONDS=600.
set_tests_properties(spec/soak PROPERTIES TIMEOUT 900)
