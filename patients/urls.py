from django.urls import path

from patients import import_views, views

urlpatterns = [
    path("", views.patient_list, name="patient_list"),
    path("new/", views.patient_create, name="patient_create"),
    path("<int:patient_pk>/", views.patient_detail, name="patient_detail"),
    path("<int:patient_pk>/edit/", views.patient_edit, name="patient_edit"),
    path("<int:patient_pk>/archive/", views.patient_archive, name="patient_archive"),
    path("<int:patient_pk>/history/", views.patient_history, name="patient_history"),
    path("<int:patient_pk>/course/new/", views.course_start, name="course_start"),
    path("<int:patient_pk>/dose/new/", views.dose_change, name="dose_change"),
    path("<int:patient_pk>/labs/new/", views.lab_panel, name="lab_panel"),
    path("<int:patient_pk>/labs/<int:lab_pk>/", views.lab_result, name="lab_result"),
    path("<int:patient_pk>/events/new/", views.event_create, name="event_create"),
    path("<int:patient_pk>/medications/new/", views.medication_create, name="medication_create"),
    path("<int:patient_pk>/recommendations/<int:recommendation_pk>/accept/", views.recommendation_accept,
         name="recommendation_accept"),
    path("<int:patient_pk>/recommendations/<int:recommendation_pk>/override/", views.recommendation_override,
         name="recommendation_override"),
    path("<int:patient_pk>/recommendations/<int:recommendation_pk>/comment/", views.recommendation_comment,
         name="recommendation_comment"),
    path("<int:patient_pk>/desensitization/new/", views.plan_create, name="plan_create"),
    path("<int:patient_pk>/desensitization/<int:plan_pk>/", views.plan_detail, name="plan_detail"),
    path("<int:patient_pk>/desensitization/<int:plan_pk>/days/<int:day_pk>/", views.plan_record_day, name="plan_record_day"),
    path("<int:patient_pk>/desensitization/<int:plan_pk>/decide/", views.plan_decide, name="plan_decide"),
    # Results that arrive (issue #15)
    path("imports/", import_views.import_list, name="import_list"),
    path("imports/test-names/", import_views.test_names, name="test_names"),
    path("imports/hl7/", import_views.hl7_messages, name="hl7_messages"),
    path("imports/<int:import_pk>/", import_views.import_detail, name="import_detail"),
    path("imports/<int:import_pk>/check/", import_views.import_check, name="import_check"),
    path("imports/<int:import_pk>/confirm/", import_views.import_confirm, name="import_confirm"),
    path("imports/<int:import_pk>/cancel/", import_views.import_cancel, name="import_cancel"),
    path("imports/<int:import_pk>/progress/", import_views.import_progress, name="import_progress"),
    path("imports/<int:import_pk>/summary.csv", import_views.import_summary, name="import_summary"),
    path("imports/<int:import_pk>/reprocess/", import_views.hl7_reprocess, name="hl7_reprocess"),
]
