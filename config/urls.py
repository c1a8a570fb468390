from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found
from drf_spectacular.views import SpectacularAPIView

from accounts.forms import LoginForm
from accounts.two_factor import two_factor_setup, two_factor_verify
from accounts.views import api_key_revoke, api_keys, audit_trail, emergency_access
from monitoring.api import MonitoringStatusList
from monitoring.views import health
from patients import api as patients_api

admin.site.site_header = "Alectinib monitoring — administration"


def _api(view):
    """An API view: signed in by its key (accounts.api_auth), not by the session."""
    return login_not_required(view.as_view())


# The REST API (issue #15), documented in the README; the schema is at a stable URL.
api_v1 = [
    path("patients/", _api(patients_api.PatientList), name="api_patients"),
    path("patients/<id:patient_pk>/", _api(patients_api.PatientDetail), name="api_patient"),
    path("lab-results/", _api(patients_api.LabResultList), name="api_labs"),
    path("lab-results/<id:lab_pk>/", _api(patients_api.LabResultDetail), name="api_lab"),
    path("lab-results/intake/", _api(patients_api.LabIntake), name="api_lab_intake"),
    path("fhir/Bundle/", _api(patients_api.FhirBundleIntake), name="api_fhir_bundle"),
    path("recommendations/", _api(patients_api.RecommendationList), name="api_recommendations"),
    path("monitoring/", _api(MonitoringStatusList), name="api_monitoring"),
]

urlpatterns = [
    path("api/v1/", include(api_v1)),
    path("api/schema/", login_not_required(SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[])),
         name="api_schema"),
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("login/verify/", two_factor_verify, name="two_factor_verify"),
    path("account/two-step/", two_factor_setup, name="two_factor_setup"),
    path("health/", health, name="health"),
    path("audit/", audit_trail, name="audit_trail"),
    path("account/api-keys/", api_keys, name="access_keys"),
    path("account/api-keys/<id:token_pk>/revoke/", api_key_revoke, name="access_key_revoke"),
    path("emergency-access/", emergency_access, name="emergency_access"),
    path("admin/", admin.site.urls),
    path("", include("monitoring.urls")),
    path("patients/", include("patients.urls")),
    path("protocols/", include("protocols.urls")),
]


def _not_found(request, exception):
    """The REST API answers JSON even for a path that matches nothing; pages answer the page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = _not_found
