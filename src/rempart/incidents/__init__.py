"""Breach response (GDPR Art. 33 and 34): incidents, their scope turned into facts by the access log,
and the documents drafted from those facts."""
