"""09 - tenants (GS CIM 009 4.14, 6.3.14): the NGSILD-Tenant header, isolation
between tenants, NonexistentTenant for reads of unknown tenants, creation on
first create."""
import pytest

from helpers import BASE, ENTITIES, assert_problem, prop

ID = "urn:ngsi-ld:Parcel:t1"


def test_created_on_first_create(hub):
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant="alpha")
    assert_problem(st, b, 404, "NonexistentTenant")
    st, h, _ = hub.post(ENTITIES, {"id": ID, "type": "Parcel", "w": prop(1)}, tenant="alpha")
    assert st == 201, hub.last_text
    st, _, b = hub.get(ENTITIES + "/" + ID, tenant="alpha")
    assert st == 200 and b["w"]["value"] == 1
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant="alpha")
    assert st == 200 and [x["id"] for x in b] == [ID]


def test_invisible_in_other_tenants(hub):
    hub.post(ENTITIES, {"id": ID, "type": "Parcel", "w": prop(1)}, tenant="alpha")
    assert hub.post(ENTITIES, {"id": "urn:ngsi-ld:Parcel:beta-only", "type": "Parcel"},
                    tenant="beta")[0] == 201
    # not in beta
    st, _, b = hub.get(ENTITIES + "/" + ID, tenant="beta")
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant="beta")
    assert [x["id"] for x in b] == ["urn:ngsi-ld:Parcel:beta-only"]
    # not in the default tenant
    st, _, b = hub.get(ENTITIES + "/" + ID)
    assert_problem(st, b, 404, "ResourceNotFound")
    st, _, b = hub.get(ENTITIES + "?type=Parcel")
    assert st == 200 and b == []


def test_same_id_in_two_tenants(hub):
    e = {"id": "urn:ngsi-ld:Parcel:shared", "type": "Parcel"}
    assert hub.post(ENTITIES, dict(e, w=prop(1)), tenant="gamma")[0] == 201
    assert hub.post(ENTITIES, dict(e, w=prop(2)), tenant="delta")[0] == 201
    assert hub.post(ENTITIES, dict(e, w=prop(3)))[0] == 201
    assert hub.get(ENTITIES + "/" + e["id"], tenant="gamma")[2]["w"]["value"] == 1
    assert hub.get(ENTITIES + "/" + e["id"], tenant="delta")[2]["w"]["value"] == 2
    assert hub.get(ENTITIES + "/" + e["id"])[2]["w"]["value"] == 3
    # a delete in one tenant leaves the others
    assert hub.delete(ENTITIES + "/" + e["id"], tenant="gamma")[0] == 204
    assert hub.get(ENTITIES + "/" + e["id"], tenant="delta")[0] == 200
    assert hub.get(ENTITIES + "/" + e["id"])[0] == 200


def test_unknown_tenant_reads_404(hub):
    for path in (ENTITIES + "/" + ID, ENTITIES + "?type=Parcel", BASE + "/types",
                 BASE + "/attributes"):
        st, _, b = hub.get(path, tenant="nosuchtenant")
        assert_problem(st, b, 404, "NonexistentTenant")


def test_unknown_tenant_writes_404(hub):
    st, _, b = hub.patch(ENTITIES + "/" + ID + "/attrs", {"w": prop(2)}, tenant="nosuch2")
    assert_problem(st, b, 404, "NonexistentTenant")
    st, _, b = hub.delete(ENTITIES + "/" + ID, tenant="nosuch2")
    assert_problem(st, b, 404, "NonexistentTenant")
    # and they did not create it
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant="nosuch2")
    assert_problem(st, b, 404, "NonexistentTenant")


def test_batch_in_tenant(hub):
    st, _, b = hub.post(BASE + "/entityOperations/create",
                        [{"id": "urn:ngsi-ld:Parcel:bt1", "type": "Parcel"},
                         {"id": "urn:ngsi-ld:Parcel:bt2", "type": "Parcel"}], tenant="epsilon")
    assert st == 201, hub.last_text
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant="epsilon")
    assert sorted(x["id"] for x in b) == ["urn:ngsi-ld:Parcel:bt1", "urn:ngsi-ld:Parcel:bt2"]
    st, _, b = hub.get(BASE + "/types", tenant="epsilon")
    assert b["typeList"] == ["Parcel"]


@pytest.mark.parametrize("bad", ["has space", "x" * 200, "semi;colon"])
def test_invalid_tenant_400(hub, bad):
    st, _, b = hub.get(ENTITIES + "?type=Parcel", tenant=bad)
    assert_problem(st, b, 400, "BadRequestData")


def test_tenant_survives_restart(hub):
    hub.post(ENTITIES, {"id": "urn:ngsi-ld:Parcel:persist", "type": "Parcel"}, tenant="zeta")
    hub.restart()
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Parcel:persist", tenant="zeta")
    assert st == 200, hub.last_text
    st, _, b = hub.get(ENTITIES + "/urn:ngsi-ld:Parcel:persist")
    assert_problem(st, b, 404, "ResourceNotFound")
