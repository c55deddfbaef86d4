"""Imports every domain's models so that the metadata (migrations, tests) sees all tables."""

from rempart.approvals import models as approvals  # noqa: F401
from rempart.attestations import models as attestations  # noqa: F401
from rempart.audit import models as audit  # noqa: F401
from rempart.claims import models as claims  # noqa: F401
from rempart.detection import models as detection  # noqa: F401
from rempart.eligibility import models as eligibility  # noqa: F401
from rempart.identity import models as identity  # noqa: F401
from rempart.incidents import models as incidents  # noqa: F401
from rempart.insurers import jobs as insurer_jobs  # noqa: F401
from rempart.insurers import models as insurers  # noqa: F401
from rempart.members import export_models as member_exports  # noqa: F401
from rempart.members import models as members  # noqa: F401
from rempart.payments import approval_models as payment_run_requests  # noqa: F401
from rempart.payments import models as payments  # noqa: F401
from rempart.pricing import models as pricing  # noqa: F401
from rempart.professionals import models as professionals  # noqa: F401
from rempart.protection import models as protection  # noqa: F401
from rempart.reference import models as reference  # noqa: F401
