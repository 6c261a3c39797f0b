from apps.conversations.text import TEXT_LIMIT, split_text


def test_split_text_prefers_paragraphs_then_sentences_then_words():
    assert split_text("corto") == ["corto"]
    assert split_text("uno dos.\n\ntres cuatro", limit=12) == ["uno dos.", "tres cuatro"]
    assert split_text("Uno dos tres. Cuatro cinco seis", limit=20) == ["Uno dos tres.", "Cuatro cinco seis"]
    assert split_text("Uno. Dos tres cuatro cinco", limit=20) == [
        "Uno. Dos tres cuatro",
        "cinco",
    ]  # too early
    assert split_text("Hola mundo. Adiós amigos míos", limit=16) == ["Hola mundo.", "Adiós amigos", "míos"]


def test_split_text_cuts_a_word_only_when_it_alone_is_too_long():
    word = "x" * 9000

    parts = split_text(f"inicio {word} fin")

    assert parts == ["inicio", "x" * 4096, "x" * 4096, "x" * 808 + " fin"]


def test_split_text_keeps_every_non_space_character_in_order():
    text = " ".join(f"Frase número {n}." for n in range(900)) + "\n\n" + "fin\n"

    parts = split_text(text)

    assert len(parts) == 4
    assert all(0 < len(part) <= 4096 for part in parts)
    assert " ".join(parts).split() == text.split()
    assert all(part == part.strip() for part in parts[:-1])


def test_a_line_break_or_tab_is_a_word_boundary():
    # The splitter that conversations had before cut only at spaces: "cua" | "tro".
    assert split_text("uno\ndos\ntres\ncuatro\ncinco", limit=16) == ["uno\ndos\ntres", "cuatro\ncinco"]
    assert split_text("abc defgh\tijklmnop qr", limit=12) == ["abc defgh", "ijklmnop qr"]


def test_an_empty_text_is_one_empty_part_and_a_text_within_the_limit_is_untouched():
    # Kept from conversations' splitter (the Cloud one returned no part): a queued text is one row.
    assert split_text("") == [""]
    assert split_text("  hola \n") == ["  hola \n"]
    assert split_text("a" * TEXT_LIMIT) == ["a" * TEXT_LIMIT]
