"""The local SageMaker's model registry: model package groups and versions, idempotent by ClientToken."""

from __future__ import annotations

import time
from typing import Any

from local.sagemaker.base import ApiError, Part


class ModelRegistry(Part):
    """Mixed into LocalSageMaker: the groups and packages it holds, and their API."""

    groups: dict[str, dict[str, Any]]
    packages: dict[str, dict[str, Any]]
    tokens: dict[str, str]

    def op_CreateModelPackageGroup(self, p: dict[str, Any]) -> dict[str, Any]:
        name = p["ModelPackageGroupName"]
        with self.lock:
            if name in self.groups:
                raise ApiError("ValidationException", f"Model Package Group already exists: {name}")
            self.groups[name] = {"name": name, "created": time.time(), "versions": 0}
        return {"ModelPackageGroupArn": self.arn("model-package-group", name)}

    def op_CreateModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        group_name = p["ModelPackageGroupName"]
        with self.lock:
            token = p.get("ClientToken")
            if token and token in self.tokens:
                return {"ModelPackageArn": self.tokens[token]}
            group = self.groups.get(group_name)
            if group is None:
                raise ApiError("ValidationException", f"Model Package Group {group_name} does not exist")
            group["versions"] += 1
            version = group["versions"]
            arn = self.arn("model-package", f"{group_name}/{version}")
            self.packages[arn] = {**p, "ModelPackageVersion": version, "ModelPackageArn": arn, "created": time.time()}
            if token:
                self.tokens[token] = arn
        self.emit("model_registered", arn=arn, request=p)
        return {"ModelPackageArn": arn}

    def op_ListModelPackages(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            packages = [
                pk
                for pk in self.packages.values()
                if pk["ModelPackageGroupName"] == p.get("ModelPackageGroupName", pk["ModelPackageGroupName"])
                and pk["ModelApprovalStatus"] == p.get("ModelApprovalStatus", pk["ModelApprovalStatus"])
            ]
            packages.sort(key=lambda pk: pk["created"], reverse=p.get("SortOrder", "Ascending") == "Descending")
            start = int(p.get("NextToken", "0"))
            end = start + p.get("MaxResults", 100)
            more = {"NextToken": str(end)} if end < len(packages) else {}
            packages = packages[start:end]
            return {
                **more,
                "ModelPackageSummaryList": [
                    {
                        "ModelPackageName": pk["ModelPackageGroupName"],
                        "ModelPackageGroupName": pk["ModelPackageGroupName"],
                        "ModelPackageVersion": pk["ModelPackageVersion"],
                        "ModelPackageArn": pk["ModelPackageArn"],
                        "ModelPackageDescription": pk.get("ModelPackageDescription", ""),
                        "CreationTime": pk["created"],
                        "ModelPackageStatus": "Completed",
                        "ModelApprovalStatus": pk["ModelApprovalStatus"],
                    }
                    for pk in packages
                ],
            }

    def op_DescribeModelPackage(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            pk = self.packages.get(p["ModelPackageName"])
            if pk is None:
                raise ApiError("ValidationException", f"Model package {p['ModelPackageName']} does not exist")
            out = {k: v for k, v in pk.items() if k not in ("created", "ClientToken")}
            out.update(
                {
                    "ModelPackageName": pk["ModelPackageGroupName"],
                    "CreationTime": pk["created"],
                    "ModelPackageStatus": "Completed",
                    "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
                }
            )
            return out
