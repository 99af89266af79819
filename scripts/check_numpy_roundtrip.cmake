# ctest checkpoint_numpy_roundtrip: dgm writes, numpy reads and writes, dgm reads back.
#   cmake -DINTEROP=<dgm_interop> -DPYTHON=<python3> -DSCRIPT=<numpy_roundtrip.py> -DDIR=<folder> -P this file
file(REMOVE_RECURSE "${DIR}")
if(NOT PYTHON)
  message(FATAL_ERROR "python3 not found: apt-get install python3 python3-numpy (make test installs them)")
endif()
foreach(step "${INTEROP};write;${DIR}" "${PYTHON};${SCRIPT};${DIR}" "${INTEROP};check;${DIR}")
  execute_process(COMMAND ${step} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "checkpoint round trip: '${step}' failed (exit ${rc})")
  endif()
endforeach()
message(STATUS "checkpoint round trip dgm -> numpy -> dgm: every name, shape, dtype and value matched")
