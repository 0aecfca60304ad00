"""Reading one split's examples: by position where the storage allows it, in stored order otherwise.

* **ArrayRecord** (how `digits`, `mnist` and `fashion_mnist` are prepared, and any TFDS dataset built with
  `file_format=array_record`): random access through TFDS's data source. A process reads the records it
  needs, a batch of positions per call.
* **An image folder**: random access too; a position names a file in TFDS's fixed order of the folder.
* **TFRecord** (TFDS's default format, e.g. a prepared `imagenet2012`): no random access. The split is
  streamed in stored order with its images left encoded (`tfds.decode.SkipDecoding`), so a process reads
  every record's bytes but decodes only those it keeps.

Positions count the examples in the order TFDS reads the split without file shuffling, so a position names
the same example in every run. Every reader decodes with the dataset's own image feature, as TFDS's
`as_dataset` does, so the pixels do not depend on the way the bytes were read.
"""

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from tensorflow_datasets.core import decode as tfds_decode
from tensorflow_datasets.core import file_adapters

# The format cnn_jax prepares a dataset in: ArrayRecord reads any example by position. (A dataset
# already prepared keeps its format; TFRecord is read as a stream.)
PREPARED_FORMAT = file_adapters.FileFormat.ARRAY_RECORD.value


class Records:
    """The examples of one split. With random access, `fetch` gets for a batch of positions what `decode`
    turns into (image, label); without, `stream` yields (position, fetched) in stored order."""

    random_access = False

    def __init__(self, builder, split: str):
        self.builder, self.split = builder, split
        self.num_examples = builder.info.splits[split].num_examples
        self.image_key, self.label_key = builder.info.supervised_keys
        self.image_feature = builder.info.features[self.image_key]

    def fetch(self, positions: tf.Tensor, needed: tf.Tensor):
        """One string per position (what `decode` needs); positions not `needed` may get an empty one."""
        raise NotImplementedError

    def decode(self, position: tf.Tensor, fetched) -> tuple:
        """(image, int32 label) of one fetched or streamed example."""
        raise NotImplementedError

    def stream(self) -> tf.data.Dataset:
        """(int64 position, fetched) of every example, in stored order."""
        raise NotImplementedError


class ArrayRecords(Records):
    """A split prepared as ArrayRecord: serialized examples read by position."""

    random_access = True

    def __init__(self, builder, split: str):
        super().__init__(builder, split)
        self._source = builder.as_data_source(split, deserialize_method=tfds_decode.DeserializeMethod.RAW_BYTES)

    def _read(self, positions: np.ndarray, needed: np.ndarray) -> np.ndarray:
        out = np.full(len(positions), b"", dtype=object)
        wanted = np.flatnonzero(needed)
        # One element at a time: a list of bytes assigned at once would pass through a fixed-width numpy
        # string type, which drops trailing zero bytes.
        for k, record in zip(wanted, self._source.__getitems__(positions[wanted].tolist()) if len(wanted) else ()):
            out[k] = record
        return out

    def fetch(self, positions, needed):
        serialized = tf.numpy_function(self._read, [positions, needed], tf.string, stateful=False)
        serialized.set_shape(positions.shape)
        return serialized

    def decode(self, position, fetched):
        example = self.builder.info.features.deserialize_example(
            fetched, decoders={self.image_key: tfds.decode.SkipDecoding()}
        )
        return self.image_feature.decode_example(example[self.image_key]), tf.cast(example[self.label_key], tf.int32)


class FolderFiles(Records):
    """An image folder (TFDS's ImageFolder): position i is the i-th file of TFDS's fixed order."""

    random_access = True

    def __init__(self, builder, split: str):
        super().__init__(builder, split)
        examples = builder._split_examples[split]  # ImageFolder's order: sorted files, shuffled with a fixed seed
        label = builder.info.features[self.label_key]
        self._paths = tf.constant([e.image_path for e in examples], tf.string)
        self._labels = tf.constant([label.str2int(e.label) for e in examples], tf.int32)

    def fetch(self, positions, needed):
        return tf.gather(self._paths, positions)

    def decode(self, position, fetched):
        return self.image_feature.decode_example(tf.io.read_file(fetched)), tf.gather(self._labels, position)


class StreamedRecords(Records):
    """A split without random access (TFRecord): every record streamed in stored order, images encoded."""

    def decode(self, position, fetched):
        encoded, label = fetched
        return self.image_feature.decode_example(encoded), label

    def stream(self):
        ds = self.builder.as_dataset(
            split=self.split,
            shuffle_files=False,
            decoders={self.image_key: tfds.decode.SkipDecoding()},
            read_config=tfds.ReadConfig(shuffle_seed=0),
        )
        return ds.enumerate().map(
            lambda i, example: (i, (example[self.image_key], tf.cast(example[self.label_key], tf.int32)))
        )


def open_records(builder, split: str, is_folder: bool) -> Records:
    """The reader of `split`: random access for ArrayRecord and image folders, a stream otherwise. The
    prepared format decides (an alternative format beside it would number the examples differently
    when the split has several files)."""
    if is_folder:
        return FolderFiles(builder, split)
    if builder.info.file_format == file_adapters.FileFormat.ARRAY_RECORD:
        return ArrayRecords(builder, split)
    return StreamedRecords(builder, split)
