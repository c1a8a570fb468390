from django.urls import path

from patients import import_views, views

urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("new/", views.patient_create, name="patient_create"),
    path("<id:patient_pk>/", views.patient_detail, name="patient_detail"),
    path("<id:patient_pk>/edit/", views.patient_edit, name="patient_edit"),
    path("<id:patient_pk>/archive/", views.patient_archive, name="patient_archive"),
    path("<id:patient_pk>/history/", views.patient_history, name="patient_history"),
    path("<id:patient_pk>/course/new/", views.course_start, name="course_start"),
    path("<id:patient_pk>/dose/new/", views.dose_change, name="dose_change"),
    path("<id:patient_pk>/labs/new/", views.lab_panel, name="lab_panel"),
    path("<id:patient_pk>/labs/<id:lab_pk>/", views.lab_result, name="lab_result"),
    path("<id:patient_pk>/events/new/", views.event_create, name="event_create"),
    path("<id:patient_pk>/medications/new/", views.medication_create, name="medication_create"),
    path("<id:patient_pk>/recommendations/<id:recommendation_pk>/accept/", views.recommendation_accept,
         name="recommendation_accept"),
    path("<id:patient_pk>/recommendations/<id:recommendation_pk>/override/", views.recommendation_override,
         name="recommendation_override"),
    path("<id:patient_pk>/recommendations/<id:recommendation_pk>/comment/", views.recommendation_comment,
         name="recommendation_comment"),
    path("<id:patient_pk>/desensitization/new/", views.plan_create, name="plan_create"),
    path("<id:patient_pk>/desensitization/<id:plan_pk>/", views.plan_detail, name="plan_detail"),
    path("<id:patient_pk>/desensitization/<id:plan_pk>/days/<id:day_pk>/", views.plan_record_day, name="plan_record_day"),
    path("<id:patient_pk>/desensitization/<id:plan_pk>/decide/", views.plan_decide, name="plan_decide"),
    # Results that arrive (issue #15)
    path("imports/", import_views.import_list, name="import_list"),
    path("imports/test-names/", import_views.test_names, name="test_names"),
    path("imports/hl7/", import_views.hl7_messages, name="hl7_messages"),
    path("imports/<id:import_pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<id:import_pk>/check/", import_views.import_check, name="import_check"),
    path("imports/<id:import_pk>/confirm/", import_views.import_confirm, name="import_confirm"),
    path("imports/<id:import_pk>/cancel/", import_views.import_cancel, name="import_cancel"),
    path("imports/<id:import_pk>/progress/", import_views.import_progress, name="import_progress"),
    path("imports/<id:import_pk>/summary.csv", import_views.import_summary, name="import_summary"),
    path("imports/<id:import_pk>/reprocess/", import_views.hl7_reprocess, name="hl7_reprocess"),
]
