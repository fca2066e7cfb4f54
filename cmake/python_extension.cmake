# molt_python_extension(<name> PACKAGE <package> SOURCES <c files>...)
#
# A CPython extension module <package>.<name>, built against the Python that
# runs the tests: the project's .venv when there is one (scikit-build-core
# passes its own). After the build the module is copied into
# python/<package>/ (git ignores it there), so `PYTHONPATH=python` imports it
# straight after `make`; a wheel build (SKBUILD) installs it into the package
# instead (component wheel) and leaves the checkout alone. Not built under
# the sanitizers: an ASan module cannot load into a plain interpreter, and
# the copy would replace the plain build's.
if(NOT DEFINED Python3_EXECUTABLE AND EXISTS "${PROJECT_SOURCE_DIR}/.venv/bin/python")
  set(Python3_EXECUTABLE "${PROJECT_SOURCE_DIR}/.venv/bin/python")
endif()
find_package(Python3 COMPONENTS Interpreter Development.Module)

function(molt_python_extension name)
  cmake_parse_arguments(PYEXT "" "PACKAGE" "SOURCES" ${ARGN})
  if(NOT Python3_Development.Module_FOUND OR MOLT_DB_SANITIZE OR MOLT_DB_TSAN)
    message(STATUS "Python extension ${PYEXT_PACKAGE}.${name}: not built (the pure-Python path serves)")
    return()
  endif()
  Python3_add_library(${name} MODULE WITH_SOABI ${PYEXT_SOURCES})
  set_target_properties(${name} PROPERTIES C_VISIBILITY_PRESET hidden)
  if(SKBUILD)
    install(TARGETS ${name} LIBRARY DESTINATION ${PYEXT_PACKAGE} COMPONENT wheel)
  else()
    # on every build (copy_if_different): a deleted or stale copy comes back
    add_custom_target(${name}_into_package ALL
      COMMAND ${CMAKE_COMMAND} -E copy_if_different $<TARGET_FILE:${name}>
              "${PROJECT_SOURCE_DIR}/python/${PYEXT_PACKAGE}/"
      DEPENDS ${name} VERBATIM)
  endif()
endfunction()
