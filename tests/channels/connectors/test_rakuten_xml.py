"""The one XML-to-document conversion the contract's response schemas are written over (contract notes)."""

from channels.connectors.rakuten.mapper import rakuten_error, xml_document


def test_leaves_are_their_stripped_text_and_namespaces_attributes_and_comments_go():
    document = xml_document(
        b'<?xml version="1.0" encoding="UTF-8"?><cancelitemresult xmlns="http://example/cancelitem" a="1">'
        b"<!-- a note --><response><lastversion>2011-02-02</lastversion>"
        b"<status>\n  <![CDATA[ CANCELLED ]]>\n</status><empty/></response></cancelitemresult>")
    assert document == {"cancelitemresult": {"response": {"lastversion": "2011-02-02", "status": "CANCELLED",
                                                          "empty": ""}}}


def test_list_containers_always_hold_lists_even_of_one_or_none():
    document = xml_document(
        b"<getnewsalesresult><response><sales><sale><purchaseid>1</purchaseid><items><item><itemid>9</itemid>"
        b"</item></items></sale></sales></response></getnewsalesresult>")
    sales = document["getnewsalesresult"]["response"]["sales"]
    assert sales == {"sale": [{"purchaseid": "1", "items": {"item": [{"itemid": "9"}]}}]}
    empty = xml_document(b"<getnewsalesresult><response><sales/></response></getnewsalesresult>")
    assert empty["getnewsalesresult"]["response"]["sales"] == {"sale": []}


def test_any_other_repeated_tag_becomes_a_list_which_no_schema_allows():
    document = xml_document(b"<r><response><nexttoken>A</nexttoken><nexttoken>B</nexttoken></response></r>")
    assert document == {"r": {"response": {"nexttoken": ["A", "B"]}}}


def test_an_errorresponse_is_read_with_every_detail():
    error = rakuten_error(xml_document(
        b"<errorresponse><error><type>Sender</type><code>ParameterError</code><message>Problem with parameters."
        b"</message><details><detail><![CDATA[ The parameter login is mandatory ]]></detail><detail>and version"
        b"</detail></details></error></errorresponse>"))
    assert (error.type, error.code, error.message) == ("Sender", "ParameterError", "Problem with parameters.")
    assert error.details == ("The parameter login is mandatory", "and version")
    assert rakuten_error({"getnewsalesresult": {}}) is None
