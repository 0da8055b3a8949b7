print("quant-bench: not written yet")
