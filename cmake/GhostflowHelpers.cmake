# GhostflowHelpers.cmake — the two functions every module uses.
#
# gf_library(NAME <name> DIR <dir> [DEPS ...] [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
#   Compiles every <dir>/*.c once (position independent) and links the objects
#   into lib<name>.so (target lib<name>) and lib<name>.a (target lib<name>_static).
#   Files named *_avx2.c / *_avx512.c get their instruction-set flags so one binary
#   carries every kernel and picks one at run time (CPUID); nothing else does.
#   DEPS names other gf libraries: the shared library links their shared build,
#   the static one their static build.
#
# gf_test(NAME <name> SOURCES ... [LIBS ...] [LABELS ...] [TIMEOUT s] [ARGS ...])
#   A cmocka test run from the repository root, so tests find ../shared/ by
#   the relative path the README documents. Label "unit" (the default) marks
#   tests that also run under valgrind; give LABELS slow for the ones that don't.

# -mno-avx512f: with GF_NATIVE on an AVX-512 build machine, -march=native
# would otherwise let the AVX2 kernels use EVEX encodings and 32 registers,
# and they would not be the code an AVX2-only machine runs.
set(GF_AVX2_FLAGS   -mavx2 -mfma -mf16c -mno-avx512f)
set(GF_AVX512_FLAGS -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -mfma -mf16c)

function(gf_library)
  cmake_parse_arguments(L "" "NAME;DIR" "DEPS;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  file(GLOB srcs CONFIGURE_DEPENDS ${L_DIR}/*.c)
  foreach(s ${srcs})
    if(s MATCHES "_avx2\\.c$")
      set_source_files_properties(${s} PROPERTIES COMPILE_OPTIONS "${GF_AVX2_FLAGS}")
    elseif(s MATCHES "_avx512\\.c$")
      set_source_files_properties(${s} PROPERTIES COMPILE_OPTIONS "${GF_AVX512_FLAGS}")
    endif()
  endforeach()
  add_library(lib${L_NAME}_obj OBJECT ${srcs})
  set_target_properties(lib${L_NAME}_obj PROPERTIES POSITION_INDEPENDENT_CODE ON
                        C_VISIBILITY_PRESET hidden)
  target_include_directories(lib${L_NAME}_obj
    PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>
    PRIVATE ${L_DIR})
  target_compile_definitions(lib${L_NAME}_obj PRIVATE GF_BUILDING_LIBRARY)
  target_link_libraries(lib${L_NAME}_obj PUBLIC ${L_PUBLIC_LIBS} PRIVATE ${L_PRIVATE_LIBS})

  add_library(lib${L_NAME} SHARED $<TARGET_OBJECTS:lib${L_NAME}_obj>)
  add_library(lib${L_NAME}_static STATIC $<TARGET_OBJECTS:lib${L_NAME}_obj>)
  foreach(t lib${L_NAME} lib${L_NAME}_static)
    set_target_properties(${t} PROPERTIES OUTPUT_NAME ${L_NAME}
      VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR})
    target_include_directories(${t} PUBLIC
      $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:include>)
    target_link_libraries(${t} PUBLIC ${L_PUBLIC_LIBS} PRIVATE ${L_PRIVATE_LIBS})
  endforeach()
  foreach(d ${L_DEPS})
    target_link_libraries(lib${L_NAME} PUBLIC lib${d})
    target_link_libraries(lib${L_NAME}_static PUBLIC lib${d}_static)
  endforeach()
  # A static archive carries no link dependencies of its own: consumers need them.
  target_link_libraries(lib${L_NAME}_static INTERFACE ${L_PRIVATE_LIBS})
  install(TARGETS lib${L_NAME} lib${L_NAME}_static EXPORT ghostflowTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

function(gf_test)
  cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS;ARGS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 300)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA Threads::Threads m)
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/tests)
  set(launcher "")
  if(GF_TEST_LAUNCHER AND "unit" IN_LIST T_LABELS)
    separate_arguments(launcher UNIX_COMMAND "${GF_TEST_LAUNCHER}")
  endif()
  add_test(NAME ${T_NAME} COMMAND ${launcher} $<TARGET_FILE:${T_NAME}> ${T_ARGS}
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${T_NAME} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    ENVIRONMENT "GF_BUILD_DIR=${PROJECT_BINARY_DIR};GF_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
endfunction()
