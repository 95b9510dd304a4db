"""What the SageMaker Python SDK does to make a model.tar.gz: `tarfile.open(path, "w:gz")`
and `add` the model file (sagemaker.utils.create_tar_file, tarfile's default gzip
level 9), for bench/run's package row.

    python bench/sagemaker_tar.py OUT.tar.gz MODEL.onnx
"""

import os
import sys
import tarfile


def main():
    out, model = sys.argv[1], sys.argv[2]
    with tarfile.open(out, "w:gz") as tar:
        tar.add(model, arcname=os.path.basename(model))


if __name__ == "__main__":
    main()
