"""The tuning request: names, the CreateHyperParameterTuningJob requests, warm start and the
worst-case cost. Imports the contract, `governance`, `settings` and `aws`.
"""
