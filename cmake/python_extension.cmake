# molt_db_python_extension(TARGET NAME PACKAGE DIR SOURCES ... LINK ...)
#
# One CPython extension module, PACKAGE.NAME (for example molt_db_adapter
# and _host), built from SOURCES against the Python that runs the project:
# Python3_EXECUTABLE (make passes the .venv's; scikit-build-core passes the
# one building the wheel). Only the module's init function is exported: the
# static libraries it links keep their symbols to themselves, so they never
# clash with what other extensions of the same process load (CPython's own
# _ssl and _sqlite3, for example).
#
# Where the module lands:
# - a wheel build (SKBUILD): installed into PACKAGE/ (component wheel);
# - every other build: ${PROJECT_BINARY_DIR}/python/PACKAGE/, and when
#   MOLT_DB_PYTHON_INPLACE is ON (the default build/, not the sanitizer
#   builds) a symlink python/PACKAGE/<module file> points at it, so that
#   after `make` the tests import it with PYTHONPATH=python. The symlinks
#   are git-ignored (python/*/*.so).
if(NOT DEFINED MOLT_DB_PYTHON_INPLACE)
  if(SKBUILD OR MOLT_DB_SANITIZE OR MOLT_DB_TSAN)
    set(MOLT_DB_PYTHON_INPLACE OFF)
  else()
    set(MOLT_DB_PYTHON_INPLACE ON)
  endif()
endif()
set(MOLT_DB_PYTHON_INPLACE ${MOLT_DB_PYTHON_INPLACE} CACHE BOOL
  "Link the Python extension modules into python/<package>/")

find_package(Python3 3.11 COMPONENTS Interpreter Development.Module)

function(molt_db_python_extension target)
  cmake_parse_arguments(ARG "" "NAME;PACKAGE" "SOURCES;LINK" ${ARGN})
  if(NOT Python3_Development.Module_FOUND)
    message(STATUS "${ARG_PACKAGE}.${ARG_NAME}: no Python headers (python3-dev), not built")
    return()
  endif()
  Python3_add_library(${target} MODULE WITH_SOABI ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE ${ARG_LINK})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME ${ARG_NAME}
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/python/${ARG_PACKAGE})
  # the static archives' symbols stay inside the module
  target_link_options(${target} PRIVATE -Wl,--exclude-libs,ALL)
  if(SKBUILD)
    install(TARGETS ${target} LIBRARY DESTINATION ${ARG_PACKAGE} COMPONENT wheel)
  elseif(MOLT_DB_PYTHON_INPLACE)
    add_custom_command(TARGET ${target} POST_BUILD
      COMMAND ${CMAKE_COMMAND} -E create_symlink $<TARGET_FILE:${target}>
              ${PROJECT_SOURCE_DIR}/python/${ARG_PACKAGE}/$<TARGET_FILE_NAME:${target}>
      VERBATIM)
  endif()
endfunction()
