"""Small real data for predictor tests: Fashion-MNIST (or scikit-learn's digits) as PNG bytes,
and short texts in Tamil, Hindi and English."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from labelfarm.ml.predictors import FieldSpec, ItemInput
from labelfarm.sample_data import fashion_mnist_available, load_digits, load_fashion_mnist


def png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def image_split(n_train: int = 400, n_test: int = 200):
    """(train items, train labels, test items, test labels, field) from real images."""
    data = load_fashion_mnist("t10k") if fashion_mnist_available() else load_digits()
    n = n_train + n_test
    items = [ItemInput(i, {}, png(data.images[i])) for i in range(n)]
    names = [data.classes[k] for k in data.labels[:n]]
    field = FieldSpec("product", "choice", data.classes)
    return items[:n_train], names[:n_train], items[n_train:], names[n_train:], field


TOPICS = ("food", "weather", "sport")
TEXTS = {
    "food": [
        "இட்லி சாம்பார் மிகவும் சுவையாக இருந்தது",
        "அம்மா சமைத்த சோறு குழம்பு",
        "दाल चावल और रोटी बहुत स्वादिष्ट थे",
        "माँ ने आज पनीर की सब्ज़ी बनाई",
        "the biryani and curry were delicious",
        "we cooked rice and dal for dinner",
        "dosa with chutney for breakfast, सुबह का नाश्ता",
        "தோசை சட்னி காலை உணவு",
    ],
    "weather": [
        "இன்று கனமழை பெய்யும் என்று வானிலை அறிக்கை",
        "வெயில் அதிகமாக உள்ளது, வெப்பம் கூடும்",
        "आज भारी बारिश होगी, मौसम ठंडा है",
        "कल तेज़ धूप और गर्मी रहेगी",
        "heavy rain and thunderstorms expected today",
        "the weather will be sunny and hot tomorrow",
        "monsoon rain, बारिश और ठंडी हवा",
        "மழை மற்றும் குளிர் காற்று",
    ],
    "sport": [
        "கிரிக்கெட் போட்டியில் இந்தியா வென்றது",
        "கால்பந்து அணி கோல் அடித்தது",
        "क्रिकेट मैच में भारत ने जीत हासिल की",
        "फुटबॉल टीम ने दो गोल किए",
        "india won the cricket match by five wickets",
        "the football team scored two goals",
        "cricket match, बल्लेबाज़ ने शतक बनाया",
        "டென்னிஸ் போட்டியில் வெற்றி",
    ],
}


def text_split():
    """Train on the first six texts of each topic, test on the last two."""
    train, test = [], []
    for topic, texts in TEXTS.items():
        train += [(t, topic) for t in texts[:6]]
        test += [(t, topic) for t in texts[6:]]
    field = FieldSpec("topic", "choice", TOPICS)

    def items(rows, start):
        return [ItemInput(start + i, {"text": t}) for i, (t, _) in enumerate(rows)]

    return items(train, 0), [y for _, y in train], items(test, 100), [y for _, y in test], field
