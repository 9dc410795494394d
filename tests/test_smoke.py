from conftest import ORDER


def test_create_order_reserves_stock(api):
    status, order = api.post("/orders", ORDER)
    assert status == 201, order
    assert order["status"] == "confirmed"
    status, stock = api.get("/stock?sku=SKU-A")
    assert {i["warehouse"]: i["reserved"] for i in stock["items"]} == {"MAIN": 2, "WEST": 0}
