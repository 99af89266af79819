# ctest pytorch_bridge: dgm builds recipes' models, trains them briefly and writes checkpoints, JSON and
# test figures; scripts/to_torch.py rebuilds each in PyTorch from its JSON alone, loads dgm's tensors
# with strict=True and reproduces dgm's figures to 1e-4; then PyTorch-initialised state_dicts load into dgm,
# which reproduces PyTorch's figures to 1e-4 (docs/outputs.md).
#   cmake -DINTEROP=<dgm_interop> -DPYTHON=<python3> -DSCRIPT=<to_torch.py> -DDIR=<folder> -P this file
# Says "PyTorch is not installed" and returns when Debian's python3-torch is not (ctest: skipped, by the
# test's SKIP_REGULAR_EXPRESSION).
file(REMOVE_RECURSE "${DIR}")
execute_process(COMMAND ${PYTHON} -c "import torch" RESULT_VARIABLE has_torch OUTPUT_QUIET ERROR_QUIET)
if(NOT has_torch EQUAL 0)
  message(STATUS "PyTorch is not installed (apt-get install python3-torch): the bridge is not checked")
  return()
endif()
execute_process(COMMAND ${INTEROP} export ${DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "dgm_interop export failed (exit ${rc})")
endif()
execute_process(COMMAND ${PYTHON} ${SCRIPT} ${DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "to_torch.py: a family did not match (exit ${rc})")
endif()
# the other way: PyTorch's state_dicts into dgm, dgm's figures against PyTorch's
execute_process(COMMAND ${INTEROP} import ${DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "dgm_interop import failed (exit ${rc})")
endif()
execute_process(COMMAND ${PYTHON} ${SCRIPT} --check-import ${DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "to_torch.py --check-import: dgm's figures on PyTorch's weights differ (exit ${rc})")
endif()
