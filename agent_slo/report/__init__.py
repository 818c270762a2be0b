"Aggregation, figures and paper rendering from records; it computes nothing new."
