# kh_cc_library(NAME <name> [HDRS ...] SRCS ... [DEPS ...] [PRIVATE_DEPS ...] [INCLUDE_DIR <dir>])
# Makes target kh_<name>, aliased kh::<name>. Public headers live under <dir>/kh/<name>/.
function(kh_cc_library)
  cmake_parse_arguments(KH "" "NAME;INCLUDE_DIR" "SRCS;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT KH_INCLUDE_DIR)
    set(KH_INCLUDE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/include)
  endif()
  add_library(kh_${KH_NAME} ${KH_SRCS})
  add_library(kh::${KH_NAME} ALIAS kh_${KH_NAME})
  target_include_directories(kh_${KH_NAME} PUBLIC ${KH_INCLUDE_DIR})
  target_link_libraries(kh_${KH_NAME} PUBLIC ${KH_DEPS} PRIVATE ${KH_PRIVATE_DEPS})
  target_compile_options(kh_${KH_NAME} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# kh_tsan_sees_absl(<executable>): in a ThreadSanitizer build (the tsan preset), makes the
# executable's absl::Mutex locking visible to TSan (tests/support/tsan_absl_sync.cc); else nothing.
# For the tests and the binaries they start (pods, refstack).
function(kh_tsan_sees_absl target)
  if(CMAKE_CXX_FLAGS MATCHES "-fsanitize=thread")
    target_sources(${target} PRIVATE ${PROJECT_SOURCE_DIR}/tests/support/tsan_absl_sync.cc)
    target_link_libraries(${target} PRIVATE absl::synchronization ${CMAKE_DL_LIBS})
  endif()
endfunction()

# kh_cc_test(NAME <name> SRCS ... DEPS ... [LABELS ...] [PREFIX <prefix>])
# A GoogleTest executable registered with CTest, test by test (each CTest name prefixed with
# <prefix> when given, e.g. "kubeapi." so that `ctest -R kubeapi` selects a component's tests).
function(kh_cc_test)
  cmake_parse_arguments(KH "" "NAME;PREFIX" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${KH_NAME} ${KH_SRCS})
  target_link_libraries(${KH_NAME} PRIVATE ${KH_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_options(${KH_NAME} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  # Paths reach tests as compile definitions; a list-valued property here would be split by
  # gtest_discover_tests, so tests take a single label.
  kh_tsan_sees_absl(${KH_NAME})
  gtest_discover_tests(${KH_NAME}
    DISCOVERY_TIMEOUT 60
    TEST_PREFIX "${KH_PREFIX}"
    PROPERTIES LABELS "${KH_LABELS}")
endfunction()

include(GoogleTest OPTIONAL)

# kh_pod_executable(<target>): links <target> with static gRPC, Abseil, protobuf and OpenBLAS
# (cmake/pod-link.sh) when KH_STATIC_POD_LINK is on: the executables refstack starts as pods,
# whose process start-up is part of every cold start.
option(KH_STATIC_POD_LINK "Link pod executables (modelserver, queue-proxy) with static archives where Debian has them" ON)
function(kh_pod_executable target)
  kh_tsan_sees_absl(${target})
  if(KH_STATIC_POD_LINK AND NOT CMAKE_CXX_FLAGS MATCHES "-fsanitize")
    set_target_properties(${target} PROPERTIES RULE_LAUNCH_LINK "${PROJECT_SOURCE_DIR}/cmake/pod-link.sh")
  endif()
endfunction()
