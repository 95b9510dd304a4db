-- wrk script for bench/run: one iris example per request, as SageMaker's runtime would send it.
wrk.method = "POST"
wrk.body = '{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
wrk.headers["Content-Type"] = "application/json"
