"""A small FHIR history (a Bundle): a patient, two observations of two categories, a
condition, an immunization — five records in four scopes."""

def history():
    cat = "http://terminology.hl7.org/CodeSystem/observation-category"
    pat = {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"}
    return {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000",
         "resource": {"resourceType": "Patient", "id": "p", "gender": "female"}},
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
         "resource": {"resourceType": "Observation", "id": "o1", "status": "final", "subject": pat,
                      "category": [{"coding": [{"system": cat, "code": "laboratory"}]}],
                      "code": {"text": "Hb"}, "valueQuantity": {"value": 13.5, "unit": "g/dL"},
                      "effectiveDateTime": "2024-01-02"}},
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002",
         "resource": {"resourceType": "Observation", "id": "o2", "status": "final", "subject": pat,
                      "category": [{"coding": [{"system": cat, "code": "vital-signs"}]}],
                      "code": {"text": "HR"}, "valueQuantity": {"value": 60, "unit": "/min"},
                      "effectiveDateTime": "2024-01-03"}},
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000003",
         "resource": {"resourceType": "Condition", "id": "c1", "subject": pat,
                      "code": {"text": "asthma"}, "recordedDate": "2023-05-01"}},
        {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000004",
         "resource": {"resourceType": "Immunization", "id": "i1", "status": "completed",
                      "vaccineCode": {"text": "flu"}, "patient": pat,
                      "occurrenceDateTime": "2023-10-01"}}]}
