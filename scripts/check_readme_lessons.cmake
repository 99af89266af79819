# Checks that README.md's lesson table has exactly one row per lesson of
# CMakeLists.txt's DGM_LESSONS, and no row for a lesson that does not exist.
# Run by ctest (readme_lists_every_lesson): cmake -DREADME=... -DLESSONS="a;b" -P this file.
file(STRINGS "${README}" rows REGEX "^\\| `[a-z0-9_]+` \\|")
set(listed "")
foreach(row ${rows})
  string(REGEX MATCH "^\\| `([a-z0-9_]+)`" _ "${row}")
  list(APPEND listed "${CMAKE_MATCH_1}")
endforeach()
set(expected ${LESSONS})
list(SORT listed)
list(SORT expected)
if(NOT listed STREQUAL expected)
  message(FATAL_ERROR "README.md's lesson table lists [${listed}], CMakeLists.txt's DGM_LESSONS has [${expected}]: "
                      "give every lesson one row, and no row to a lesson that does not exist")
endif()
list(LENGTH listed n)
message(STATUS "README.md lists all ${n} lessons")
