"""Forms of the import pages (issue #15)."""

from __future__ import annotations

from django import forms

from patients import csv_import
from patients.intake import BUILT_IN_NAMES, DATE_FORMATS
from patients.models import ANALYTE_CHOICES, AnalyteAlias
from protocols.analytes import ANALYTES


class UploadForm(forms.Form):
    clinic = forms.ModelChoiceField(queryset=None, empty_label=None)
    file = forms.FileField(error_messages={"empty": "The file is empty."}, help_text="A CSV export (UTF-8 or Latin-1; commas, semicolons or tabs) or a FHIR R4 "
                                     "Bundle of Observations (.json).")

    def __init__(self, *args, clinics, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["clinic"].queryset = clinics
        if clinics.count() == 1:
            self.fields["clinic"].widget = forms.HiddenInput()
            self.fields["clinic"].initial = clinics.first()

    def clean_file(self):
        f = self.cleaned_data["file"]
        if f.size == 0:
            raise forms.ValidationError("The file is empty.")
        if f.size > csv_import.MAX_BYTES:
            raise forms.ValidationError(f"The file is too big (at most {csv_import.MAX_BYTES // 1024 // 1024} MB): "
                                        "split it.")
        return f


class MappingForm(forms.Form):
    """Which column holds what, and how the file writes dates."""

    date_format = forms.ChoiceField(choices=list(DATE_FORMATS.items()), initial="iso",
                                    help_text="Only this format is read: 03/04/2025 is refused under ISO.")

    def __init__(self, *args, header: list[str], mapping: dict[str, int | None], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        columns = [("", "— not in this file —")] + [(str(i), f"{name}") for i, name in enumerate(header)]
        for name, label in csv_import.FIELDS.items():
            required = name in csv_import.REQUIRED
            self.fields[f"col_{name}"] = forms.ChoiceField(
                label=label + ("" if required else " (optional)"), choices=columns, required=required,
                initial="" if mapping.get(name) is None else str(mapping[name]))
        self.order_fields([f"col_{n}" for n in csv_import.FIELDS] + ["date_format"])

    def mapping(self) -> dict[str, int | None]:
        return {name: int(v) if (v := self.cleaned_data.get(f"col_{name}")) not in (None, "") else None
                for name in csv_import.FIELDS}


class AliasForm(forms.ModelForm):
    class Meta:
        model = AnalyteAlias
        fields = ["name", "analyte"]
        labels = {"name": "The laboratory's name", "analyte": "is the test"}

    def __init__(self, *args, clinic, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.clinic = clinic
        self.fields["analyte"].choices = [("", "— choose —"), *ANALYTE_CHOICES]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not AnalyteAlias.key_of(name):
            raise forms.ValidationError("Enter the name as the laboratory writes it.")
        if AnalyteAlias.key_of(name) in BUILT_IN_NAMES:
            known = ANALYTES[BUILT_IN_NAMES[AnalyteAlias.key_of(name)]].label
            raise forms.ValidationError(f"“{name}” is already the app's own name for {known}: it cannot be taught "
                                        "as anything else.")
        if AnalyteAlias.objects.filter(clinic=self.clinic, key=AnalyteAlias.key_of(name)).exists():
            raise forms.ValidationError("This clinic already knows this name.")
        return name
