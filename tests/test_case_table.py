"""The case table of reliability.md §A7 (issue #11): every fault, load, bad-input and
security case, and the tests that prove it. A case with no test names why and what it
waits for. The test below fails when a case is missing or a named test no longer exists,
so the table cannot drift from the suites. `python tests/test_case_table.py` prints it.

Where the tests run: make test (the fast suite), make faults (faults/, a stack of our own
processes), make soak (scripts/soak.py, the load cases)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASES: dict[str, list[str] | str] = {
    # Faults (make faults unless named otherwise)
    "F1": ["faults/test_faults.py::test_f1_a_killed_worker_s_task_is_redelivered_and_runs_once"],
    "F2": ["faults/test_faults.py::test_f2_a_task_lost_with_its_pool_child_is_made_up_by_the_next_tick",
           "monitoring/tests/test_operations.py::test_the_tick_makes_up_a_lost_sweep_once"],
    "F3": ["monitoring/tests/test_digests.py::test_running_the_job_twice_sends_one_digest_per_person_per_day",
           "monitoring/tests/test_digest_delivery.py::test_a_sent_or_claimed_digest_is_not_sent_again"],
    "F4": ["faults/test_faults.py::test_f4_pages_work_and_health_reports_the_broker_while_redis_is_down"],
    "F5": ["faults/test_faults.py::test_f5_lost_queue_is_rederived_from_the_database"],
    "F6": ["faults/test_faults.py::test_f6_smtp_down_keeps_the_row_pending_with_backoff"],
    "F7": ["faults/test_faults.py::test_f7_a_silent_smtp_server_fails_the_attempt_within_the_timeout"],
    "F8": ["faults/test_faults.py::test_f8_a_transient_refusal_is_retried_and_delivered_once"],
    "F9": ["faults/test_faults.py::test_f9_a_permanent_refusal_fails_at_once",
           "monitoring/tests/test_digest_delivery.py::test_550_at_rcpt_is_permanent_without_an_smtp_code_attribute"],
    "F10": ["faults/test_faults.py::test_f10_the_app_recovers_without_restarting_web_or_worker"],
    "F11": ["faults/test_faults.py::test_f11_health_reports_a_stopped_scheduler_and_beat_catches_up_once"],
    "F12": ["faults/test_faults.py::test_f12_overlapping_ticks_send_no_duplicate"],
    "F13": ["monitoring/tests/test_digests.py::test_a_rolled_back_plan_sends_nothing_and_leaves_no_task"],
    "F14": ["monitoring/tests/test_clinic_time_zones.py::test_f14_one_digest_per_clinic_day_across_a_dst_change"],
    # Load (make soak)
    "L1": ["scripts/soak.py"], "L2": ["scripts/soak.py"], "L3": ["scripts/soak.py"], "L5": ["scripts/soak.py"],
    "L4": ["scripts/soak.py", "patients/tests/test_bulk_import.py::test_fifty_thousand_rows_in_the_background"],
    # Bad inputs
    "I1": ["patients/tests/test_imports.py::test_every_kind_of_bad_row_is_listed_with_line_field_and_reason",
           "patients/tests/test_imports.py::test_a_file_that_is_not_a_table_is_refused_whole",
           "patients/tests/test_imports.py::test_good_file_dry_run_then_confirm_then_again_nothing_new",
           "patients/tests/test_imports.py::test_bom_semicolons_decimal_commas_and_a_chosen_date_format",
           "patients/tests/test_imports.py::test_latin1_and_a_censored_value",
           "patients/tests/test_intake.py::test_random_rows_never_crash_nor_save_anything_invalid"],
    "I2": ["patients/tests/test_services.py::test_bilirubin_in_umol_per_litre_is_converted_and_the_reported_value_kept",
           "protocols/tests/test_unit_boundaries.py::test_grades_and_actions_are_identical_in_conventional_and_si_units"],
    "I3": ["patients/tests/test_services.py::test_bad_value_gets_a_message_on_its_field_and_nothing_is_saved",
           "patients/tests/test_intake.py::test_censored_value_is_stored_as_a_bound",
           "patients/tests/test_clinical_safety.py::test_an_implausible_reference_limit_is_refused_not_a_server_error"],
    "I4": ["patients/tests/test_services.py::test_the_service_applies_the_date_rule_for_imports_too",
           "patients/tests/test_intake.py::test_date_formats_are_only_those_chosen",
           "patients/tests/test_services.py::test_collection_time_in_the_future_is_refused"],
    "I5": ["accounts/tests/test_security_controls.py::test_i5_markup_in_a_name_is_escaped"],
    "I6": ["monitoring/tests/test_dashboards.py::test_csv_export_has_every_section_and_guards_formulas"],
    "I7": ["accounts/tests/test_security_controls.py::test_i7_a_post_without_the_csrf_token_is_refused_and_changes_nothing"],
    "I8": ["accounts/tests/test_access.py::test_clinic_a_user_gets_404_for_every_clinic_b_object",
           "accounts/tests/test_access.py::test_every_url_keyword_is_known",
           "accounts/tests/test_audit_trail.py::test_a_refused_cross_clinic_request_is_recorded_and_logged_with_the_user"],
    "I9": ["patients/tests/test_views.py::test_create_patient_ignores_extra_fields_and_refuses_duplicate_mrn"],
    "I10": ["accounts/tests/test_security_controls.py::test_i10_too_many_fields_is_a_fast_400"],
    "I11": ["monitoring/tests/test_digest_delivery.py::test_an_error_that_is_not_smtp_ends_the_attempt_counts_and_fails"],
    "I12": ["patients/tests/test_version_conflicts.py::test_the_second_of_two_dose_changes_read_at_450_is_refused"],
    # Security controls
    "S1": ["accounts/tests/test_auth.py::test_check_deploy_is_clean_under_production_settings"],
    "S2": ["accounts/tests/test_auth.py::test_repeated_failures_lock_the_user_from_that_address_but_not_a_colleague"],
    "S3": ["accounts/tests/test_auth.py::test_session_slides_and_idles_out_after_15_minutes_by_default",
           "accounts/tests/test_auth.py::test_session_ends_after_the_absolute_lifetime"],
    "S4": ["accounts/tests/test_auth.py::test_logout_ends_the_session"],
    "S5": ["accounts/tests/test_auth.py::test_deactivated_user_is_signed_out"],
    "S6": ["accounts/tests/test_security_controls.py::test_s6_a_password_change_ends_the_other_sessions"],
    "S7": ["accounts/tests/test_security_controls.py::test_s7_the_session_id_changes_at_sign_in"],
    "S8": ["accounts/tests/test_audit_trail.py::test_opening_a_record_is_on_the_trail_with_who_clinic_and_address",
           "accounts/tests/test_audit_trail.py::test_a_write_is_on_the_trail_and_its_history_rows_carry_the_address",
           "accounts/tests/test_audit_trail.py::test_an_export_is_on_the_trail",
           "accounts/tests/test_audit_trail.py::test_trail_rows_cannot_be_changed_in_the_database",
           "accounts/tests/test_security_controls.py::test_s8_a_bulk_update_cannot_forge_a_result"],
    "S9": ["accounts/tests/test_security_controls.py::test_s9_a_phi_page_carries_the_security_headers"],
    "S10": ["accounts/tests/test_security_controls.py::test_s10_an_error_is_a_generic_page_without_patient_data"],
    "S11": ["patients/tests/test_views.py::test_search_is_posted_and_finds_by_mrn_and_name",
            "monitoring/tests/test_operations.py::test_the_admin_patient_list_has_no_search_in_the_url"],
    "S12": ["accounts/tests/test_two_factor.py::test_a_clinic_admin_without_a_device_must_set_one_up_before_any_page"],
    "S13": ["monitoring/tests/test_digests.py::test_digest_lists_mrn_test_and_days_overdue_and_nothing_more"],
    "S14": ["accounts/tests/test_auth.py::test_deploy_check_refuses_backends_without_a_password",
            "tests/test_compose.py::test_compose_requires_passwords_for_postgres_and_redis"],
    "S15": ["patients/tests/test_result_corrections.py::test_amending_alt_300_to_30_regrades_and_supersedes_the_withhold",
            "patients/tests/test_result_corrections.py::test_the_database_refuses_an_in_place_change_whatever_the_door",
            "patients/tests/test_result_corrections.py::test_the_admin_cannot_change_a_result"],
    "S16": ["accounts/tests/test_break_glass.py::test_a_reason_of_at_least_a_sentence_is_required",
            "accounts/tests/test_break_glass.py::test_the_grant_ends_when_its_time_is_up",
            "accounts/tests/test_break_glass.py::test_the_grant_is_on_the_trail_in_the_log_and_emailed_to_the_clinics_admins",
            "accounts/tests/test_break_glass.py::test_the_grant_reaches_no_other_page_no_write_and_no_other_patient"],
}

EXPECTED = ([f"F{n}" for n in range(1, 15)] + [f"L{n}" for n in range(1, 6)] + [f"I{n}" for n in range(1, 13)]
            + [f"S{n}" for n in range(1, 17)])


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_case_of_a7_is_in_the_table_and_every_named_test_exists():
    assert sorted(CASES) == sorted(EXPECTED)
    missing = []
    for case, tests in CASES.items():
        if isinstance(tests, str):
            assert tests, f"{case}: say what it waits for"
            continue
        for ref in tests:
            path, _, name = ref.partition("::")
            if not (ROOT / path).exists() or (name and name not in _functions(ROOT / path)):
                missing.append(f"{case}: {ref}")
    assert not missing, f"the table names tests that do not exist: {missing}"


if __name__ == "__main__":
    for case in EXPECTED:
        tests = CASES[case]
        print(f"| {case} | {'; '.join(t.split('::')[-1] for t in tests) if isinstance(tests, list) else 'not yet: ' + tests} |")
