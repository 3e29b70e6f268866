print("rrun")
