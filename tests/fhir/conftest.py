from tests.e2e.conftest import app, app_runtime, clock, no_identity_in_professional_responses, population, recorder

__all__ = ["app", "app_runtime", "clock", "no_identity_in_professional_responses", "population", "recorder"]
