# Warning flags for our own code (the list Lua and libuv lint with).
set(AMB_WARNING_FLAGS
  -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wstrict-prototypes
  -Wmissing-prototypes -Wold-style-definition -Wmissing-declarations
  -Wpointer-arith -Wcast-align -Wformat=2 -Wvla -Wno-unused-parameter)
if(AMB_WERROR)
  list(APPEND AMB_WARNING_FLAGS -Werror)
endif()

function(amb_target_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:C>:${AMB_WARNING_FLAGS}>)
endfunction()
