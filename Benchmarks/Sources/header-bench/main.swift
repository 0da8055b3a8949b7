print("header-bench: not written yet")
