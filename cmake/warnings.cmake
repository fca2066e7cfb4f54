# The compiler flags every C file of the project is built with: warnings
# (errors with MOLT_DB_WERROR) and the POSIX feature macros. Included by the
# top-level CMakeLists.txt and by python/ext/ when it is built alone.
add_compile_options(-Wall -Wextra -Wshadow -Wstrict-prototypes -Wvla
                    -Wno-missing-field-initializers)
add_compile_definitions(_POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
if(MOLT_DB_WERROR)
  add_compile_options(-Werror)
endif()
