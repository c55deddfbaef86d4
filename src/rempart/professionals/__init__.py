"""Practices (pharmacies, optical shops, surgeries, hospitals) and the health professionals in them."""
