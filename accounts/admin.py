from __future__ import annotations

from datetime import date, datetime

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.http import Http404
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from accounts.access import clinic_ids_with_role
from accounts.models import AuditEvent, Clinic, Membership, Role, User
from protocols import dates


def scoped_choices(db_field, request):
    """The rows a foreign key or many-to-many field of an admin form may offer: the same
    clinic gate as the app (accounts.access). None: the field has no clinic (leave it)."""
    related = db_field.related_model
    manager = related._default_manager
    if hasattr(manager.get_queryset(), "for_user"):
        return manager.get_queryset().for_user(request.user)
    if related is Clinic:
        if db_field.model is Membership:
            # Only a clinic's admin can grant access to it.
            return Clinic.objects.filter(pk__in=clinic_ids_with_role(request.user, Role.ADMIN))
        return Clinic.objects.filter(pk__in=request.user.clinic_ids())
    if related is User:
        return User.objects.filter(memberships__clinic__in=request.user.clinic_ids()).distinct()
    return None


class ScopedChoicesMixin:
    """Every foreign-key and many-to-many choice of an admin form passes the clinic gate."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        choices = scoped_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        choices = scoped_choices(db_field, request)
        if choices is not None:
            kwargs["queryset"] = choices
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class KeepUntouchedInstantsMixin:
    """The admin's time inputs show whole seconds: an untouched save would cut the
    microseconds off a stored instant (archived_at, last_login) and write a history row
    saying it changed. A date-time the user did not change keeps its stored value."""

    def save_form(self, request, form, change):
        obj = super().save_form(request, form, change)
        if change:
            for name, value in form.initial.items():
                if isinstance(value, datetime) and name in form.fields and name not in form.changed_data:
                    setattr(obj, name, value)
        return obj


# Dates that may lie ahead (protocols.dates HORIZON); every other date has happened.
PLANNED_DATES = {"end_date", "snoozed_until", "resume_on"}


def _born(instance) -> date | None:
    for path in (("date_of_birth",), ("patient", "date_of_birth"), ("course", "patient", "date_of_birth")):
        obj = instance
        try:
            for name in path:
                obj = getattr(obj, name)
        except (AttributeError, ObjectDoesNotExist):
            continue
        if isinstance(obj, date):
            return obj
    return None


def check_dates(form) -> None:
    """The one date rule of the pages (protocols.dates) on an admin form: the admin
    refuses the dates the pages refuse (issue #12: a course start of 1900 was accepted)."""
    data, today = form.cleaned_data, timezone.localdate()
    born = data.get("date_of_birth") or _born(form.instance)
    for name, value in list(data.items()):
        if isinstance(value, datetime):
            problem = dates.datetime_problem(timezone.localtime(value), now=timezone.now(), born=born)
        elif isinstance(value, date) and name == "date_of_birth":
            problem = dates.birth_date_problem(value, today=today)
        elif isinstance(value, date):
            problem = dates.date_problem(value, today=today, born=born, planned=name in PLANNED_DATES)
        else:
            continue
        if problem and name in form.fields and name not in form.errors:
            form.add_error(name, problem)


class SaneDatesAdminMixin:
    def get_form(self, request, obj=None, change=False, **kwargs):
        base = super().get_form(request, obj, change=change, **kwargs)

        class Checked(base):
            def clean(self):
                data = super().clean()
                check_dates(self)
                return data

        return Checked


class ClinicScopedAdmin(SaneDatesAdminMixin, KeepUntouchedInstantsMixin, ScopedChoicesMixin, admin.ModelAdmin):
    """Admin pages see the same rows as the app: only the user's clinics' data, and
    foreign keys offer only choices from those clinics (accounts.access). Models whose
    queryset has no for_user() name the lookup to their clinic in `clinic_path`."""

    clinic_path: str | None = None

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if self.clinic_path:
            return qs.filter(**{f"{self.clinic_path}__in": request.user.clinic_ids()}).distinct()
        return qs.for_user(request.user)


class ReadOnlyMixin:
    """Viewed in the admin, never added, changed or deleted there (for a ModelAdmin or an
    inline: both call these with the request, inlines also with the parent object)."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyScopedAdmin(ReadOnlyMixin, ClinicScopedAdmin):
    """Rows written only through the app's workflows (they keep state consistent)."""


class ScopedHistoryAdmin(ClinicScopedAdmin, SimpleHistoryAdmin):
    """History pages behind the same clinic gate as every other admin page.

    django-simple-history looks objects up without the admin's queryset (its history
    view falls back to the latest historical row; its revision view reads the history
    table directly), so both views check the object against `get_queryset` first: another
    clinic's object is a 404, as in the app. A revision page is read-only: posting it
    would save an old version (clinic included) around the app's workflows."""

    def _in_scope_or_404(self, request, object_id) -> None:
        if not self.get_queryset(request).filter(pk=unquote(object_id)).exists():
            raise Http404

    def history_view(self, request, object_id, extra_context=None):
        self._in_scope_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context=extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._in_scope_or_404(request, object_id)
        if request.method != "GET":
            raise PermissionDenied("Old versions are read-only: correct the record through the app.")
        return super().history_form_view(request, object_id, version_id, extra_context=extra_context)

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def has_delete_permission(self, request, obj=None):
        # Records are archived or corrected, never deleted (45 CFR 164.312(c)(1)).
        return False


class MembershipInline(ScopedChoicesMixin, admin.TabularInline):
    model = Membership
    extra = 1


@admin.register(User)
class UserAdmin(KeepUntouchedInstantsMixin, DjangoUserAdmin):
    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_active"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        return qs.filter(memberships__clinic__in=request.user.clinic_ids()).distinct()

    def get_readonly_fields(self, request, obj=None):
        # Only a superuser grants superuser status, staff status or permissions; a clinic
        # admin manages memberships (roles) of their own clinics.
        if request.user.is_superuser:
            return super().get_readonly_fields(request, obj)
        return ["is_superuser", "is_staff", "user_permissions", "groups", "last_login", "date_joined"]


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "timezone"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.filter(pk__in=request.user.clinic_ids())


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyScopedAdmin):
    """The access trail, read-only: clinic admins see their clinics' rows (issue #12)."""

    list_display = ["at", "username", "action", "what", "clinic", "ip", "status"]
    list_filter = ["action"]
