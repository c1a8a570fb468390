from django.urls import path

from monitoring import views

urlpatterns = [
    path("", views.home, name="home"),
    path("cohort/", views.cohort, name="cohort"),
    path("monitoring/items/<id:item_pk>/follow-up/", views.follow_up, name="follow_up"),
    path("monitoring/outbox/", views.outbox, name="outbox"),
    path("monitoring/outbox/<id:digest_pk>/retry/", views.digest_retry, name="digest_retry"),
    path("monitoring/requirements/", views.requirements, name="requirements"),
    path("monitoring/clinics/<id:clinic_pk>/requirements/new/", views.requirement_create, name="requirement_create"),
    path("monitoring/clinics/<id:clinic_pk>/requirements/<id:requirement_pk>/", views.requirement_edit,
         name="requirement_edit"),
    path("monitoring/clinics/<id:clinic_pk>/settings/", views.clinic_settings, name="clinic_settings"),
    path("monitoring/preferences/", views.preferences, name="preferences"),
    path("monitoring/unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    path("monitoring/patients/<id:patient_pk>/record/", views.record_test, name="record_test"),
]
