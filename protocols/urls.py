from django.urls import path

from protocols import views

urlpatterns = [
    path("", views.protocol_list, name="protocol_list"),
    path("<id:protocol_pk>/", views.protocol_detail, name="protocol_detail"),
    path("<id:protocol_pk>/copy/", views.protocol_copy, name="protocol_copy"),
    path("<id:protocol_pk>/edit/", views.protocol_edit, name="protocol_edit"),
    path("<id:protocol_pk>/approve/", views.protocol_approve, name="protocol_approve"),
]
