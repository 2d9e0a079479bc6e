# Run by CPack (CPACK_PRE_BUILD_SCRIPTS) on the staged files of both packages, after its own
# strip: removes from every ELF file the sections Debian's packaging tools remove as well
# (.comment: the compiler's version strings; .note: an unused note section), and any symbol
# left. Fails the package build if strip fails.
file(GLOB_RECURSE staged LIST_DIRECTORIES false "${CPACK_TEMPORARY_INSTALL_DIRECTORY}/*")
foreach(file IN LISTS staged)
  if(IS_SYMLINK "${file}")
    continue()
  endif()
  file(READ "${file}" magic LIMIT 4 HEX)
  if(NOT magic STREQUAL "7f454c46")
    continue()
  endif()
  execute_process(
    COMMAND "${CPACK_DECNET_STRIP}" --strip-all --remove-section=.comment --remove-section=.note
            "${file}"
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "strip failed on ${file}: ${err}")
  endif()
endforeach()
