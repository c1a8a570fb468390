from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts.forms import LoginForm
from accounts.two_factor import two_factor_setup, two_factor_verify
from accounts.views import audit_trail, emergency_access
from monitoring.views import health

admin.site.site_header = "Alectinib monitoring — administration"

urlpatterns = [
    path("login/", auth_views.LoginView.as_view(authentication_form=LoginForm, redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("login/verify/", two_factor_verify, name="two_factor_verify"),
    path("account/two-step/", two_factor_setup, name="two_factor_setup"),
    path("health/", health, name="health"),
    path("audit/", audit_trail, name="audit_trail"),
    path("emergency-access/", emergency_access, name="emergency_access"),
    path("admin/", admin.site.urls),
    path("", include("monitoring.urls")),
    path("patients/", include("patients.urls")),
    path("protocols/", include("protocols.urls")),
]
