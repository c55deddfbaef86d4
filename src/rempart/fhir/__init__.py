"""The FHIR R4 facade (``/fhir``): eligibility, prior authorisation, claims and payment
reconciliation as HL7 resources, translated onto the same services as the native API."""
