from django.urls import path

from monitoring import program_views, views

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
    # The oral therapy program (issue #16)
    path("monitoring/patients/<id:patient_pk>/program/", program_views.overview, name="program"),
    path("monitoring/patients/<id:patient_pk>/program/education/", program_views.education, name="program_education"),
    path("monitoring/patients/<id:patient_pk>/program/handout/", program_views.handout, name="program_handout"),
    path("monitoring/patients/<id:patient_pk>/program/prescriptions/new/", program_views.prescription_create,
         name="prescription_create"),
    path("monitoring/patients/<id:patient_pk>/program/dispensings/new/", program_views.dispensing_create,
         name="dispensing_create"),
    path("monitoring/patients/<id:patient_pk>/program/<str:kind>/<id:record_pk>/withdraw/", program_views.supply_void,
         name="supply_void"),
    path("monitoring/patients/<id:patient_pk>/program/check-ins/new/", program_views.check_in, name="check_in"),
]
