"""The reference peer: the usual Python way to do the stopper's job, a plain
boto3 handler run by awslambdaric. It does the same work the Rust function
does for the benchmark's events: one execution named directly, or an alarm
naming a pipeline whose running executions to stop (16 at a time), with a
derived idempotency token per execution and the blocking steps listed after
each accepted stop. The client is built at init, as AWS recommends."""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config

CONCURRENCY = 16
sagemaker = boto3.client("sagemaker", config=Config(
    retries={"mode": "standard", "max_attempts": 3},
    connect_timeout=3, read_timeout=10, max_pool_connections=CONCURRENCY,
))


def token(identity, arn):
    return hashlib.sha256(f"{identity}\0{arn}".encode()).hexdigest()


def running(pipeline):
    arns = []
    for page in sagemaker.get_paginator("list_pipeline_executions").paginate(PipelineName=pipeline, PaginationConfig={"PageSize": 100}):
        arns += [s["PipelineExecutionArn"] for s in page["PipelineExecutionSummaries"]
                 if s["PipelineExecutionStatus"] == "Executing"]
    return arns


def stop(identity, arn):
    try:
        sagemaker.stop_pipeline_execution(PipelineExecutionArn=arn, ClientRequestToken=token(identity, arn))
    except sagemaker.exceptions.ClientError as e:
        return {"PipelineExecutionArn": arn, "Outcome": "Failed", "Error": e.response["Error"]["Code"]}
    steps = sagemaker.list_pipeline_execution_steps(PipelineExecutionArn=arn, MaxResults=100)["PipelineExecutionSteps"]
    blocking = [s["StepName"] for s in steps if s.get("StepStatus") == "Executing"
                and ("Callback" in s.get("Metadata", {}) or "Lambda" in s.get("Metadata", {}))]
    entry = {"PipelineExecutionArn": arn, "Outcome": "StopRequested"}
    if blocking:
        entry["BlockingSteps"] = blocking
    return entry


def lambda_handler(event, context):
    if "PipelineExecutionArn" in event:
        return stop(f"lambda:{context.aws_request_id}", event["PipelineExecutionArn"])
    detail = event["detail"]
    if detail["state"]["value"] != "ALARM":
        return {"Outcome": "Ignored"}
    pipelines = {m["metricStat"]["metric"]["dimensions"]["PipelineName"]
                 for m in detail["configuration"]["metrics"] if "metricStat" in m}
    identity = f"eventbridge:{event['id']}"
    arns = [arn for p in sorted(pipelines) for arn in running(p)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(lambda arn: stop(identity, arn), arns))
    return {"Executions": results}
