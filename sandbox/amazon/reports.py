"""Reports 2021-06-30 and the GET_MERCHANT_LISTINGS_ALL_DATA report: contract/reports.json."""

from __future__ import annotations

import secrets

from sandbox.amazon.common import AmazonBase
from sandbox.api import Call
from sandbox.state.common import Account
from sandbox.state.listings import amazon_listing_id, asin_for
from sandbox.store import now_iso
from sandbox.web import Response

REPORT_COLUMNS = ("item-name", "listing-id", "seller-sku", "price", "quantity", "open-date", "asin1",
                  "fulfillment-channel", "status")
REPORT_TYPES = ("GET_MERCHANT_LISTINGS_ALL_DATA",)


class ReportsApi(AmazonBase):
    def create_report(self, call: Call) -> Response:
        body = call.request.json()
        self.require_marketplace(call, body["marketplaceIds"])
        if body["reportType"] not in REPORT_TYPES:
            raise self.fail(400, "InvalidInput", f"The sandbox produces only {', '.join(REPORT_TYPES)}.")
        report_id = str(60000000000 + secrets.randbelow(10**10))
        with call.write() as db:
            db.execute("INSERT INTO job (id, account_id, kind, type, status) VALUES (?, ?, 'report', ?, 'IN_QUEUE')",
                       (report_id, call.account.id, body["reportType"]))
        return Response.json({"reportId": report_id}, 202)

    def get_report(self, call: Call, report_id: str) -> Response:
        """DONE on the second poll; CANCELLED when there is nothing to report, as Amazon does."""
        with call.write() as db:
            job = db.execute("SELECT * FROM job WHERE id = ? AND account_id = ? AND kind = 'report'",
                             (report_id, call.account.id)).fetchone()
            if job is None:
                raise self.fail(404, "NotFound", "The requested report was not found.")
            status, document = job["status"], job["result_document"]
            if status == "IN_QUEUE":
                status = "IN_PROGRESS"
            elif status == "IN_PROGRESS":
                content = self.merchant_listings_report(db, call.account)
                if content is None:
                    status = "CANCELLED"
                else:
                    status = "DONE"
                    document = self.store_document(db, call, content, "text/tab-separated-values; charset=UTF-8")
            db.execute("UPDATE job SET status = ?, polls = polls + 1, result_document = ? WHERE id = ?",
                       (status, document, report_id))
        report = {"reportId": report_id, "reportType": job["type"], "processingStatus": status,
                  "marketplaceIds": [call.account.marketplace_id], "createdTime": now_iso()}
        if document:
            report["reportDocumentId"] = document
        return Response.json(report)

    def get_report_document(self, call: Call, document_id: str) -> Response:
        return self.get_document(call, "reports", document_id)

    def download_report_document(self, call: Call, document_id: str) -> Response:
        return self.download_document(call, document_id, spoil=self.spoil_report)

    def merchant_listings_report(self, db, account: Account) -> bytes | None:
        rows = db.execute("SELECT * FROM listing WHERE account_id = ? ORDER BY id", (account.id,)).fetchall()
        if not rows:
            return None
        lines = ["\t".join(REPORT_COLUMNS)]
        for row in rows:
            afn = bool(row["fulfilled_by_channel"])
            # Amazon leaves the quantity of an FBA listing blank: Amazon holds that stock.
            active = row["live"] and (afn or row["quantity"] > 0)
            lines.append("\t".join([
                row["title"].replace("\t", " "), amazon_listing_id(row["id"]), row["sku"], row["price"],
                "" if afn else str(row["quantity"]), row["created_at"], asin_for(row["id"]),
                "AMAZON_EU" if afn else "DEFAULT", "Active" if active else "Inactive"]))
        return ("\n".join(lines) + "\n").encode()

    def spoil_report(self, call: Call, content: bytes) -> bytes:
        lines = content.decode().split("\n")
        rows = [line for line in lines[1:] if line]
        spoiled = call.take_malformed(rows)
        if spoiled is None:
            return content
        cells = rows[spoiled["index"]].split("\t")
        if spoiled["corrupt"] == "id":
            cells[REPORT_COLUMNS.index("seller-sku")] = ""
        else:
            cells[REPORT_COLUMNS.index("quantity")] = "lots"
        rows[spoiled["index"]] = "\t".join(cells)
        return ("\n".join([lines[0], *rows]) + "\n").encode()
