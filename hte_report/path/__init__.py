"""Risk-based (PATH) analysis: risk models, risk-stratified effects, personalized benefit,
exploratory STEPP."""
