from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin

from accounts.models import Clinic, Membership, User


class ClinicScopedAdmin(admin.ModelAdmin):
    """Admin pages see the same rows as the app: only the user's clinics' data, and
    foreign keys offer only choices from those clinics (accounts.access). Models whose
    queryset has no for_user() name the lookup to their clinic in `clinic_path`."""

    clinic_path: str | None = None

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self.clinic_path:
            return qs.filter(**{f"{self.clinic_path}__in": request.user.clinic_ids()})
        return qs.for_user(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        manager = related._default_manager
        if hasattr(manager.get_queryset(), "for_user"):
            kwargs["queryset"] = manager.get_queryset().for_user(request.user)
        elif related is Clinic:
            kwargs["queryset"] = Clinic.objects.filter(pk__in=request.user.clinic_ids())
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ReadOnlyScopedAdmin(ClinicScopedAdmin):
    """Rows written only through the app's workflows (they keep state consistent)."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(memberships__clinic__in=request.user.clinic_ids()).distinct()


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "timezone"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=request.user.clinic_ids())
