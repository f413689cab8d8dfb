# Warnings, each probed so gcc and clang both build (STYLE.md 10).
include(CheckCCompilerFlag)
set(_ov_warnings -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wmissing-declarations -Wwrite-strings -Wformat=2 -Wpointer-arith -Wundef -Wvla)
foreach(_w IN LISTS _ov_warnings)
	string(MAKE_C_IDENTIFIER "HAVE_FLAG${_w}" _var)
	check_c_compiler_flag(${_w} ${_var})
	if(${_var})
		add_compile_options(${_w})
	endif()
endforeach()
if(OVSTORE_WERROR)
	add_compile_options(-Werror)
endif()
